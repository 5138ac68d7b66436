"""The drift report: logged predictions, cut into windows and slices, each compared with the reference run.

Per window and per slice (all items, and each value of each slice field the reference knows):
- input: text length (KS), out-of-vocabulary word rate (KS on per-text rates), sentence embeddings (MMD with a
  permutation p-value, on a sample), and the mix of each slice field's values (chi-square; new values count);
- output: predicted-label mix (chi-square, PSI), confidence (KS), conformal set size (chi-square, PSI);
- performance: accuracy estimated without labels from calibrated confidences (CBPE) against the same estimate on
  the reference rows, and, where feedback gives true labels, the true-label mix and the measured accuracy
  against the reference's measured accuracy.

Every test's p-value goes into one Holm correction over the whole report, so the chance that a report on
unchanged data raises any alarm stays at or below ``alpha``; an alarm also needs the effect to reach its
threshold (``deploy.monitor`` in the recipe), so a trivial shift on a huge log is reported but not alarmed.
Windows or slices with fewer than ``min_items`` are shown, not tested.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import NichetuneError
from ..stats.drift import (
    category_counts,
    chi_square_homogeneity,
    expected_accuracy,
    holm,
    ks_test,
    mmd_test,
    psi,
)
from .reference import Reference, words

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
NEW = "(new)"
RARE, RARE_BUCKET = 5, "(rare)"  # reference counts under RARE are pooled, the chi-square's usual rule


def parse_window(text: str) -> float:
    """``30m``, ``6h``, ``1d``, ``1w`` -> seconds.

    Raises:
        NichetuneError: another shape.
    """
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhdw])", text.strip())
    if not match:
        raise NichetuneError(f"--window {text!r}: give a number and a unit (s, m, h, d, w)", hint="e.g. 1d or 6h")
    return float(match.group(1)) * UNITS[match.group(2)]


@dataclass
class Check:
    window: float  # the window's start (unix seconds)
    slice: str  # "all" or "field=value"
    check: str
    n: int
    reference: float | None  # the reference's value of the quantity (mean, share, accuracy)
    current: float | None
    effect: float | None  # what is compared with the threshold (PSI, KS statistic, a difference)
    threshold: float | None
    p_value: float | None  # None: shown, not tested (too few items)
    p_adjusted: float | None = None
    alarm: bool = False

    def as_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in self.__dict__.items()}


def text_stats(text: str, vocabulary: set[str]) -> tuple[int, float]:
    """A text's word count and out-of-vocabulary rate (0 for a text without words)."""
    w = words(text)
    return len(w), (sum(x not in vocabulary for x in w) / len(w) if w else 0.0)


class _Side:
    """The quantities of one group of items (or of reference rows), computed once."""

    def __init__(self, texts, predicted, confidence, slices, stats, set_sizes=None, true_labels=None):
        self.texts, self.predicted, self.confidence, self.slices = texts, predicted, confidence, slices
        self.lengths = [n for n, _ in stats]
        self.oov = [r for _, r in stats]
        self.set_sizes = set_sizes
        self.true_labels = true_labels or []


def _reference_side(ref: Reference, rows: list[dict], known: dict[int, tuple[int, float]]) -> _Side:
    """``known``: each row's ``text_stats`` by ``id``, computed once per report (a row is in several sides)."""
    sizes = ref.set_sizes()
    by_id = {id(r): s for r, s in zip(ref.rows, sizes, strict=True)} if sizes else None
    return _Side([r["text"] for r in rows], [r["predicted"] for r in rows], [r["confidence"] for r in rows],
                 [r.get("slices") or {} for r in rows], [known[id(r)] for r in rows],
                 [by_id[id(r)] for r in rows] if by_id else None, [r["label"] for r in rows])


def _current_side(items: list[dict], known: dict[int, tuple[int, float]]) -> _Side:
    sizes = [i["set_size"] for i in items]
    return _Side([i["text"] for i in items], [i["label"] for i in items], [i["confidence"] for i in items],
                 [i["slices"] for i in items], [known[id(i)] for i in items],
                 sizes if all(s is not None for s in sizes) else None,
                 [i["true_label"] for i in items if i.get("true_label") is not None])


def _mix(reference: list, current: list, categories: list) -> tuple[float, float, float, float]:
    """(p-value, PSI, the reference's and the current share of the category that moved most) over ``categories``.

    Categories whose expected count on the reference side (from both sides pooled, as the chi-square's null
    expects) is under ``RARE`` are pooled into one: a chi-square over dozens of near-empty categories has no
    power (a condition tripling its share among a hundred conditions would pass), and choosing them by the
    reference's counts alone would favour those the reference over-sampled. Values the reference never holds
    form their own category, so new ones show."""
    known = set(categories)
    both = Counter(x for x in [*reference, *current] if x in known)
    share = len(reference) / max(len(reference) + len(current), 1)
    common = [x for x in categories if both[x] * share >= RARE]

    def bucket(x):
        return x if x in common else (RARE_BUCKET if x in known else NEW)

    cats = [*common, RARE_BUCKET, NEW]
    r = category_counts([bucket(x) for x in reference], cats)
    c = category_counts([bucket(x) for x in current], cats)
    top = int(np.argmax(np.abs(c / max(c.sum(), 1) - r / max(r.sum(), 1))))
    return chi_square_homogeneity(r, c), psi(r, c), float(r[top] / max(r.sum(), 1)), float(c[top] / max(c.sum(), 1))


def _checks(window: float, name: str, ref: _Side, cur: _Side, labels: list[str], ref_accuracy: float,
            t: dict, embed: Callable | None, seed: int, slice_fields: list[str]) -> list[Check]:
    n = len(cur.texts)
    tested = n >= t["min_items"] and len(ref.texts) >= t["min_items"]

    def add(check, reference, current, effect, threshold, p):
        out.append(Check(window, name, check, n, reference, current, effect, threshold, p if tested else None))

    out: list[Check] = []
    stat, p = ks_test(ref.lengths, cur.lengths) if tested else (float("nan"), float("nan"))
    add("text length (words)", float(np.mean(ref.lengths)), float(np.mean(cur.lengths)), stat, t["ks"], p)
    _, p = ks_test(ref.oov, cur.oov) if tested else (0.0, float("nan"))
    add("out-of-vocabulary rate", float(np.mean(ref.oov)), float(np.mean(cur.oov)),
        float(np.mean(cur.oov) - np.mean(ref.oov)), t["oov"], p)
    if embed is not None and tested:
        k = t["embedding_items"]
        rng = np.random.default_rng(seed)
        a = [ref.texts[i] for i in rng.permutation(len(ref.texts))[:k]]
        b = [cur.texts[i] for i in rng.permutation(len(cur.texts))[:k]]
        statistic, p = mmd_test(embed(a), embed(b), permutations=200, seed=seed)
        add("sentence embeddings (MMD)", None, None, statistic, None, p)
    for f in slice_fields if name == "all" else []:
        known = sorted({str(s.get(f)) for s in ref.slices if s.get(f) is not None})
        p, effect, r_share, c_share = _mix([str(s.get(f)) for s in ref.slices],
                                           [str(s.get(f)) for s in cur.slices], known)
        add(f"mix of {f}", r_share, c_share, effect, t["psi"], p)
    p, effect, r_share, c_share = _mix(ref.predicted, cur.predicted, labels)
    add("predicted labels", r_share, c_share, effect, t["psi"], p)
    stat, p = ks_test(ref.confidence, cur.confidence) if tested else (float("nan"), float("nan"))
    add("confidence", float(np.mean(ref.confidence)), float(np.mean(cur.confidence)), stat, t["ks"], p)
    if ref.set_sizes is not None and cur.set_sizes is not None:
        sizes = list(range(0, len(labels) + 1))
        p, effect, _, _ = _mix(ref.set_sizes, cur.set_sizes, sizes)
        add("conformal set size", float(np.mean(ref.set_sizes)), float(np.mean(cur.set_sizes)), effect, t["psi"], p)
    from scipy.stats import norm

    # CBPE on both sides: a drop of the accuracy the calibrated confidences promise, relative to what they
    # promised on the reference rows (so a miscalibration shared by both is not mistaken for drift)
    estimate, se = expected_accuracy(cur.confidence)
    before, se_before = expected_accuracy(ref.confidence)
    spread = math.sqrt(se * se + se_before * se_before)
    add("estimated accuracy (CBPE)", before, estimate, before - estimate, t["accuracy_drop"],
        float(norm.sf((before - estimate) / spread)) if spread > 0 else 1.0)
    if len(cur.true_labels) >= t["min_items"]:
        p, effect, r_share, c_share = _mix(ref.true_labels, cur.true_labels, labels)
        out.append(Check(window, name, "true labels (feedback)", len(cur.true_labels), r_share, c_share, effect,
                         t["psi"], p))
    return out


def _measured(window: float, name: str, items: list[dict], ref_accuracy: float, t: dict) -> list[Check]:
    """Accuracy on the items with feedback, tested against the reference's (one-sided: a drop)."""
    labelled = [i for i in items if i.get("true_label") is not None]
    if len(labelled) < t["min_items"]:
        return []
    from scipy.stats import binomtest

    right = sum(i["true_label"] == i["label"] for i in labelled)
    p = binomtest(right, len(labelled), min(max(ref_accuracy, 1e-6), 1 - 1e-6), alternative="less").pvalue
    accuracy = right / len(labelled)
    return [Check(window, name, "measured accuracy (feedback)", len(labelled), ref_accuracy, accuracy,
                  ref_accuracy - accuracy, t["accuracy_drop"], float(p))]


def drift_report(items: list[dict], ref: Reference, *, window_s: float = 86400.0, thresholds: dict | None = None,
                 embed: Callable | None = None, seed: int = 0) -> dict:
    """Every check per window and slice, Holm-adjusted, with alarms; see the module docstring.

    ``items`` come from ``monitor.log.read_items`` (one model's, shadow answers excluded); ``embed(texts)`` gives
    unit vectors (None skips the embedding test).
    """
    t = {**ref.thresholds, **(thresholds or {})}
    if not items:
        raise NichetuneError("the log holds no classified items for this model",
                             hint="check --model; `nichetune serve` logs /v1/classify answers")
    start = math.floor(items[0]["ts"] / window_s) * window_s
    slice_fields = sorted({f for r in ref.rows for f in (r.get("slices") or {})})
    known = {id(r): text_stats(r["text"], ref.vocabulary) for r in [*ref.rows, *items]}  # once per text
    whole = _reference_side(ref, ref.rows, known)
    reference_slices = {}
    for f in slice_fields:
        for value in sorted({str((r.get("slices") or {}).get(f)) for r in ref.rows} - {"None"}):
            rows = [r for r in ref.rows if str((r.get("slices") or {}).get(f)) == value]
            reference_slices[(f, value)] = (_reference_side(ref, rows, known),
                                            sum(r["label"] == r["predicted"] for r in rows) / len(rows))
    checks: list[Check] = []
    windows = []
    by_window: dict[float, list[dict]] = {}
    for item in items:
        by_window.setdefault(start + math.floor((item["ts"] - start) / window_s) * window_s, []).append(item)
    for n_window, (w, group) in enumerate(sorted(by_window.items())):
        windows.append({"start": w, "end": w + window_s, "items": len(group)})
        checks += _checks(w, "all", whole, _current_side(group, known), ref.labels,
                          ref.accuracy, t, embed, seed + n_window, slice_fields)
        checks += _measured(w, "all", group, ref.accuracy, t)
        parts: dict[tuple[str, str], list[dict]] = {}
        for item in group:  # one pass: each item into the slice of each field's value
            for f in slice_fields:
                parts.setdefault((f, str(item["slices"].get(f))), []).append(item)
        for (f, value), part in sorted(parts.items()):
            if (f, value) not in reference_slices:
                continue  # a value the reference never saw: counted in the "mix of" check, not testable alone
            ref_side, accuracy = reference_slices[(f, value)]
            checks += _checks(w, f"{f}={value}", ref_side, _current_side(part, known), ref.labels, accuracy, t,
                              None, seed, [])
            checks += _measured(w, f"{f}={value}", part, accuracy, t)
    tested = [c for c in checks if c.p_value is not None and not math.isnan(c.p_value)]
    for c, adjusted in zip(tested, holm([c.p_value for c in tested]), strict=True):
        c.p_adjusted = float(adjusted)
        c.alarm = bool(adjusted < t["alpha"] and (c.threshold is None or (c.effect or 0.0) >= c.threshold))
    alarms = [c for c in checks if c.alarm]
    return {"reference": ref.name, "window_s": window_s, "thresholds": t, "windows": windows,
            "items": len(items), "tests": len(tested), "checks": [c.as_dict() for c in checks],
            "alarms": [c.as_dict() for c in alarms], "summary": _summary(alarms, len(tested), t["alpha"])}


def _summary(alarms: list[Check], tests: int, alpha: float) -> str:
    if not alarms:
        return (f"No drift alarm: {tests} tests, Holm-corrected so that a report on unchanged data alarms with "
                f"probability at most {alpha:g}.")
    where = sorted({(c.slice, c.check) for c in alarms})
    shown = "; ".join(f"{s}: {c}" for s, c in where[:8]) + (f"; and {len(where) - 8} more" if len(where) > 8 else "")
    return f"{len(alarms)} drift alarms in {len({c.slice for c in alarms})} slices ({shown})."

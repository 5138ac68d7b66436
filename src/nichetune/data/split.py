"""Deterministic, stratified, group-aware splits with a fingerprint of the test split.

Groups (a patient, a drug, a term) are kept whole: no group ever spans two splits; for labelled data, a row without a
group goes where every other copy of its text goes (the same after case, whitespace and punctuation are normalised).
With ``stratify``, groups are assigned greedily (largest first) to the split whose label counts are furthest below
target, the approach of scikit-learn's StratifiedGroupKFold. Synthetic rows only ever go to train, and only when their
parent row is in train.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from .near_dup import text_hash
from .rows import row_text

SPLIT_NAMES = {1: ("train",), 2: ("train", "test"), 3: ("train", "validation", "test")}


@dataclass
class SplitResult:
    splits: dict[str, list[dict]]
    dropped_synthetic: list[dict] = field(default_factory=list)


def check_ratios(ratios: tuple[float, ...]) -> tuple[float, ...]:
    """Split shares: 1-3 numbers in (0, 1] that sum to 1 (train[, validation], test).

    Raises:
        ValueError: with the reason (callers add where the ratios came from).
    """
    if not 1 <= len(ratios) <= 3:
        raise ValueError(f"give 1 to 3 shares (train[, validation], test), got {len(ratios)}")
    if any(not 0 < r <= 1 for r in ratios):
        raise ValueError(f"every share must be above 0 and at most 1, got {list(ratios)}")
    if abs(sum(ratios) - 1) > 1e-6:
        raise ValueError(f"the shares must sum to 1, got {list(ratios)} (sum {sum(ratios):g})")
    return ratios


def parse_ratios(text: str) -> tuple[float, ...]:
    """``"0.8,0.1,0.1"`` -> (0.8, 0.1, 0.1).

    Raises:
        DataValidationError: not numbers, or shares that do not make a split.
    """
    from ..errors import DataValidationError

    try:
        return check_ratios(tuple(float(x) for x in text.split(",")))
    except ValueError as exc:
        raise DataValidationError(f"--ratios {text!r}: {exc}", hint="e.g. --ratios 0.8,0.1,0.1") from None


def _units(rows: list[dict], group_field: str | None, join_copies: bool) -> list[list[dict]]:
    """Rows that go to one split together: a group's rows, and every copy of a normalised text that has a copy
    without a group (a test row with a copy in training scores memory, not skill: BBC News's 103 copies had put 20 of
    245 test articles there). Copies only in named groups leave the groups as the user drew them. Each unit is listed
    where its first row is, so data without such copies splits as it did before they were joined."""
    keys = []
    for row in rows:
        key = row.get(group_field) if group_field else None
        keys.append(f"g:{key}" if key not in (None, "") else f"r:{row['id']}")
    root = {k: k for k in keys}

    def find(k: str) -> str:
        while root[k] != k:
            root[k] = root[root[k]]
            k = root[k]
        return k

    order = {k: i for i, k in reversed(list(enumerate(keys)))}  # a key's first row
    copies: dict[str, list[str]] = defaultdict(list)
    no_words = text_hash("")  # texts without words copy nothing
    for key, row in zip(keys, rows, strict=True):
        if join_copies and (digest := text_hash(row_text(row))) != no_words:
            copies[digest].append(key)
    for same in copies.values():
        if all(k.startswith("g:") for k in same):
            continue  # copies only in groups the user named: `data audit` reports them, `data dedup` drops them
        for k in same[1:]:
            a, b = sorted((find(k), find(same[0])), key=order.__getitem__)
            root[b] = a  # the earlier unit absorbs the later
    by_unit: dict[str, list[dict]] = defaultdict(list)
    for key, row in zip(keys, rows, strict=True):
        by_unit[find(key)].append(row)
    return list(by_unit.values())


def _deficit(want: float, have: int, unit_size: int, unit_labels: Counter, split_labels: Counter,
             label_totals: Counter, ratio: float) -> float:
    """How far a split is below its target size (and, when stratifying, below its label targets)."""
    gap = (want - have) / max(want, 1e-9)
    if unit_labels:
        gap += sum((ratio * label_totals[lab] - split_labels[lab]) / max(label_totals[lab], 1) * c
                   for lab, c in unit_labels.items()) / max(unit_size, 1)
    return gap


def split_rows(rows: list[dict], ratios: tuple[float, ...] = (0.8, 0.1, 0.1), *, stratify: bool = False,
               group_field: str | None = None, seed: int = 0, label_field: str = "label",
               join_copies: bool = False) -> SplitResult:
    """Split ``rows`` (each with an ``id``) into train / validation / test. With ``join_copies`` (what labelled
    tasks use) a text's copies go to one split unless only named groups hold them; generation data often repeats a
    conversation on purpose (fixed answers, templates), and there the copies are split like any row."""
    names = SPLIT_NAMES[len(ratios)]
    real = [r for r in rows if not r.get("synthetic")]
    synthetic = [r for r in rows if r.get("synthetic")]
    units = _units(real, group_field, join_copies)
    rng = random.Random(seed)
    rng.shuffle(units)
    units.sort(key=len, reverse=True)  # stable: equal sizes keep the seeded order
    total = len(real)
    label_totals = Counter(r.get(label_field) for r in real) if stratify else Counter()
    size = dict.fromkeys(names, 0)
    labels = {n: Counter() for n in names}
    assigned: dict[str, list[dict]] = {n: [] for n in names}
    for unit in units:
        unit_labels = Counter(r.get(label_field) for r in unit) if stratify else Counter()
        gaps = {name: _deficit(ratio * total, size[name], len(unit), unit_labels, labels[name], label_totals, ratio)
                for name, ratio in zip(names, ratios, strict=True)}
        best = max(names, key=gaps.__getitem__)  # ties: the first split name wins
        assigned[best].extend(unit)
        size[best] += len(unit)
        labels[best].update(unit_labels)
    train_ids = {r["id"] for r in assigned["train"]}
    real_ids = {r["id"] for r in real}
    # a synthetic row made from a real row follows it into train, or is dropped (never into eval);
    # template rows have no real parent and go to train
    kept = [r for r in synthetic if r.get("parent_id") in train_ids or r.get("parent_id") not in real_ids]
    dropped = [r for r in synthetic if r.get("parent_id") in real_ids and r.get("parent_id") not in train_ids]
    assigned["train"].extend(kept)
    return SplitResult(assigned, dropped)


def first_per_label(labels: list[str], k: int, order, skip=frozenset()) -> list[int]:
    """Indices of the first ``k`` rows of each label in ``order`` (a permutation of the rows), leaving out ``skip``;
    labels in sorted order, fewer where a label has fewer. A few-shot sample: k labelled examples a label."""
    picked = []
    for label in sorted(set(labels)):
        picked += [int(i) for i in order if labels[i] == label and i not in skip][:k]
    return picked


def fingerprint(rows: list[dict]) -> dict:
    """Hashes of the normalised texts of a split, so later steps can detect contamination."""
    hashes = sorted({text_hash(row_text(r)) for r in rows})
    return {"rows": len(rows), "text_hashes": hashes,
            "sha256": hashlib.sha256(json.dumps(hashes).encode()).hexdigest()}


def copied(rows: list[dict], fp: dict) -> list[bool]:
    """For each of ``rows``: whether its normalised text appears in the fingerprinted split."""
    protected = set(fp["text_hashes"])
    return [text_hash(row_text(r)) in protected for r in rows]


def contamination(rows: list[dict], fp: dict) -> list[str]:
    """Ids of ``rows`` whose normalised text appears in the fingerprinted split."""
    return [r["id"] for r, hit in zip(rows, copied(rows, fp), strict=True) if hit]

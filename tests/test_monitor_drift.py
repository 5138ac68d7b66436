"""The drift report on simulated logs with a known answer: unchanged data raises an alarm in at most alpha of the
reports, planted shifts are found where they were planted, and a trivial shift on a huge log is not an alarm."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from nichetune.monitor.drift import drift_report, parse_window
from nichetune.monitor.reference import Reference

VOCAB = [f"w{i}" for i in range(300)]
LABELS = ["negative", "neutral", "positive"]
CONDITIONS = ["acne", "pain", "sleep"]
THRESHOLDS = {"alpha": 0.05, "psi": 0.1, "ks": 0.1, "oov": 0.05, "accuracy_drop": 0.05, "min_items": 30,
              "embedding_items": 50}


def _rows(rng, n, *, conditions=(0.4, 0.3, 0.3), labels=(0.2, 0.2, 0.6), vocab=VOCAB, words=(6, 20)):
    rows = []
    zipf = 1 / np.arange(1, len(vocab) + 1)
    zipf /= zipf.sum()
    for _ in range(n):
        text = " ".join(rng.choice(vocab, size=rng.integers(*words), p=zipf))
        predicted = LABELS[rng.choice(3, p=labels)]
        confidence = float(rng.uniform(0.5, 0.95))
        true = predicted if rng.random() < confidence else LABELS[(LABELS.index(predicted) + 1) % 3]
        rows.append({"text": text, "predicted": predicted, "label": true, "confidence": confidence,
                     "slices": {"condition": CONDITIONS[rng.choice(3, p=conditions)]}})
    return rows


def _reference(rng) -> Reference:
    return Reference(name="sim", run_dir=Path("."), rows=_rows(rng, 600), labels=LABELS, vocabulary=set(VOCAB[:250]),
                     thresholds=THRESHOLDS)


def _items(rows, day: int):
    return [{"ts": day * 86400 + i, "text": r["text"], "label": r["predicted"], "confidence": r["confidence"],
             "slices": r["slices"], "set_size": None, "true_label": None} for i, r in enumerate(rows)]


def _bag(texts):  # a cheap, deterministic embedding: hashed bag of words, unit length
    out = np.zeros((len(texts), 64))
    for i, t in enumerate(texts):
        for w in t.split():
            out[i, hash(w) % 64] += 1
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_unchanged_data_raises_an_alarm_in_at_most_alpha_of_the_reports():
    rng = np.random.default_rng(0)
    sims, alarmed, tests = 60, 0, []
    for _ in range(sims):
        ref = _reference(rng)
        items = [i for day in range(3) for i in _items(_rows(rng, 200), day)]
        report = drift_report(items, ref, window_s=86400, embed=_bag)
        alarmed += bool(report["alarms"])
        tests.append(report["tests"])
    assert min(tests) >= 40  # windows x slices x checks, all in one Holm family
    assert alarmed / sims <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / sims)


def test_planted_shifts_are_found_in_their_window_and_slice_and_nowhere_else():
    rng = np.random.default_rng(1)
    found = 0
    for _ in range(10):
        ref = _reference(rng)
        stable = [i for day in range(2) for i in _items(_rows(rng, 200), day)]
        # day 2: the condition mix moves to "sleep", and "pain" reviews get longer, out-of-vocabulary words
        shifted = _rows(rng, 150, conditions=(0.1, 0.0, 0.9))
        pain = _rows(rng, 120, conditions=(0.0, 1.0, 0.0), vocab=VOCAB[200:], words=(30, 40))
        report = drift_report(stable + _items(shifted + pain, 2), ref, window_s=86400)
        alarms = {(a["window"], a["slice"], a["check"]) for a in report["alarms"]}
        assert all(w == 2 * 86400 for w, _, _ in alarms)  # nothing in the stable days
        assert not any(s == "condition=acne" for _, s, _ in alarms)  # nor in the slice that did not move
        found += {(2 * 86400, "all", "mix of condition"), (2 * 86400, "condition=pain", "text length (words)"),
                  (2 * 86400, "condition=pain", "out-of-vocabulary rate")} <= alarms
    assert found >= 9


def test_a_trivial_shift_on_a_huge_log_is_significant_but_not_an_alarm():
    rng = np.random.default_rng(2)
    ref = _reference(rng)
    ref.rows = _rows(rng, 20000)
    items = _items(_rows(rng, 20000, labels=(0.21, 0.2, 0.59)), 0)
    report = drift_report(items, ref, window_s=86400)
    labels = next(c for c in report["checks"] if c["slice"] == "all" and c["check"] == "predicted labels")
    assert labels["effect"] < 0.01 and not labels["alarm"]


def test_feedback_gives_measured_accuracy_and_a_drop_is_an_alarm():
    rng = np.random.default_rng(3)
    ref = _reference(rng)
    items = _items(_rows(rng, 300), 0)
    for i in items:  # the true label agrees with the prediction only half the time: accuracy fell
        i["true_label"] = i["label"] if rng.random() < 0.5 else "negative" if i["label"] != "negative" else "neutral"
    report = drift_report(items, ref, window_s=86400)
    measured = next(c for c in report["checks"] if c["slice"] == "all" and c["check"] == "measured accuracy (feedback)")
    assert measured["current"] < 0.6 and measured["alarm"]
    estimated = next(c for c in report["checks"] if c["slice"] == "all" and c["check"] == "estimated accuracy (CBPE)")
    assert abs(estimated["current"] - np.mean([i["confidence"] for i in items])) < 1e-9 and not estimated["alarm"]


def test_window_sizes_parse():
    assert parse_window("1d") == 86400 and parse_window("6h") == 21600 and parse_window("30m") == 1800


def test_a_shift_among_many_rare_categories_is_found():
    """A chi-square over ~60 near-empty conditions had no power: one condition going from 10% to 30% of the
    traffic passed unnoticed until rare categories were pooled."""
    rng = np.random.default_rng(4)
    many = ["big"] + [f"rare{i}" for i in range(60)]
    shares = np.array([0.1] + [0.9 / 60] * 60)

    def rows(n, p):
        out = _rows(rng, n)
        for r in out:
            r["slices"] = {"condition": many[rng.choice(len(many), p=p)]}
        return out

    ref = Reference(name="sim", run_dir=Path("."), rows=rows(250, shares), labels=LABELS,
                    vocabulary=set(VOCAB[:250]), thresholds=THRESHOLDS)
    moved = np.array([0.3] + [0.7 / 60] * 60)
    report = drift_report(_items(rows(5000, shares), 0) + _items(rows(5000, moved), 1), ref, window_s=86400)
    mix = {c["window"]: c for c in report["checks"] if c["slice"] == "all" and c["check"] == "mix of condition"}
    assert mix[86400]["alarm"] and not mix[0]["alarm"]

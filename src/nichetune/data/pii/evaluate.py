"""Per-type precision and recall of a detector against gold spans (exact span and type match)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from .detectors import PiiDetector

Span = tuple[str, int, int]  # (type, start, end)


def score_detector(detector: PiiDetector, corpus: Iterable[tuple[str, list[Span]]]) -> dict[str, dict[str, float]]:
    """Return ``{type: {precision, recall, support, predicted}}`` over ``(text, gold spans)`` pairs."""
    tp: Counter = Counter()
    gold_n: Counter = Counter()
    pred_n: Counter = Counter()
    for text, gold in corpus:
        predicted = {(f.type, f.start, f.end) for f in detector.find(text)}
        gold_set = set(gold)
        for span in gold_set:
            gold_n[span[0]] += 1
            tp[span[0]] += span in predicted
        for span in predicted:
            pred_n[span[0]] += 1
    return {
        t: {"precision": tp[t] / pred_n[t] if pred_n[t] else 1.0, "recall": tp[t] / gold_n[t] if gold_n[t] else 1.0,
            "support": gold_n[t], "predicted": pred_n[t]}
        for t in sorted(set(gold_n) | set(pred_n))
    }

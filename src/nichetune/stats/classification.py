"""Classification metrics from label indices, written once and checked against scikit-learn."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_labels: int) -> np.ndarray:
    """(C, C) counts, rows = true label, columns = predicted label."""
    return np.bincount(np.asarray(y_true) * n_labels + np.asarray(y_pred), minlength=n_labels**2).reshape(
        n_labels, n_labels)


def _safe_div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.divide(a, b, out=np.zeros_like(a, dtype=float), where=b > 0)


def classification_metrics(y_true, y_pred, labels: list[str]) -> dict:
    """Accuracy, macro / micro / weighted F1, per-class precision, recall, F1 and support, confusion.

    Averages run over the labels that occur in ``y_true`` or ``y_pred`` (scikit-learn's default);
    a precision or recall with an empty denominator counts as 0.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    k = len(labels)
    cm = confusion_matrix(y_true, y_pred, k)
    tp = np.diag(cm).astype(float)
    support = cm.sum(1).astype(float)
    predicted = cm.sum(0).astype(float)
    precision, recall = _safe_div(tp, predicted), _safe_div(tp, support)
    f1 = _safe_div(2 * precision * recall, precision + recall)
    present = (support + predicted) > 0
    n = float(cm.sum())
    return {
        "accuracy": float(tp.sum() / n) if n else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "micro_f1": float(tp.sum() / n) if n else 0.0,  # single-label: micro F1 equals accuracy
        "weighted_f1": float((f1 * support).sum() / support.sum()) if support.sum() else 0.0,
        "per_class": {labels[i]: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                                  "support": int(support[i])} for i in range(k)},
        "confusion": cm.tolist(),
        "labels": list(labels),
        "n": int(n),
    }


def most_confused_pairs(confusion: list[list[int]], labels: list[str], top: int = 5) -> list[dict]:
    cm = np.asarray(confusion)
    pairs = [{"true": labels[i], "predicted": labels[j], "count": int(cm[i, j])}
             for i in range(len(labels)) for j in range(len(labels)) if i != j and cm[i, j] > 0]
    return sorted(pairs, key=lambda p: -p["count"])[:top]


def macro_f1_for(labels: list[str]):
    """``macro_f1(y_true, y_pred)`` over the run's full label list (absent labels count as zero F1)."""

    def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        return classification_metrics(y_true, y_pred, labels)["macro_f1"]

    return macro_f1

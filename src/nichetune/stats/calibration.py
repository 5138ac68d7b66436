"""Calibration: ECE (equal-width and equal-mass bins), MCE, Brier, NLL, reliability bins, and
temperature scaling as a fitted object (scikit-learn habits: ``fit`` returns self, state ends in ``_``)."""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.asarray(logits, dtype=float)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _bin_edges(confidence: np.ndarray, n_bins: int, strategy: str) -> np.ndarray:
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, n_bins + 1)
    if strategy == "quantile":  # equal-mass: each bin holds about the same number of predictions
        edges = np.quantile(confidence, np.linspace(0.0, 1.0, n_bins + 1))
        edges[0], edges[-1] = 0.0, 1.0
        return edges
    raise ValueError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}")


def reliability_bins(probs: np.ndarray, y: np.ndarray, n_bins: int = 15, strategy: str = "uniform") -> list[dict]:
    """Per bin of top-label confidence: its range, count, mean confidence and accuracy (empty bins left out).

    A prediction with confidence c falls in the bin (lo, hi] (the first bin also takes c == lo).
    """
    probs, y = np.asarray(probs, dtype=float), np.asarray(y)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(float)
    edges = _bin_edges(confidence, n_bins, strategy)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        sel = index == b
        if sel.any():
            bins.append({"lo": float(edges[b]), "hi": float(edges[b + 1]), "count": int(sel.sum()),
                         "confidence": float(confidence[sel].mean()), "accuracy": float(correct[sel].mean())})
    return bins


def ece(probs, y, n_bins: int = 15, strategy: str = "uniform") -> float:
    """Expected calibration error: the count-weighted mean |accuracy - confidence| over bins."""
    bins = reliability_bins(probs, y, n_bins, strategy)
    n = sum(b["count"] for b in bins)
    return float(sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in bins) / n) if n else 0.0


def mce(probs, y, n_bins: int = 15, strategy: str = "uniform") -> float:
    """Maximum calibration error: the largest |accuracy - confidence| over non-empty bins."""
    return float(max((abs(b["accuracy"] - b["confidence"]) for b in reliability_bins(probs, y, n_bins, strategy)),
                     default=0.0))


def brier(probs, y) -> float:
    """Multi-class Brier score: mean over examples of the squared distance to the one-hot label."""
    probs = np.asarray(probs, dtype=float)
    onehot = np.eye(probs.shape[1])[np.asarray(y)]
    return float(((probs - onehot) ** 2).sum(axis=1).mean())


def nll(probs, y, eps: float = 1e-12) -> float:
    probs = np.asarray(probs, dtype=float)
    return float(-np.log(np.clip(probs[np.arange(len(probs)), np.asarray(y)], eps, 1.0)).mean())


def calibration_metrics(probs, y, n_bins: int = 15) -> dict:
    return {"ece": ece(probs, y, n_bins), "ece_equal_mass": ece(probs, y, n_bins, "quantile"),
            "mce": mce(probs, y, n_bins), "brier": brier(probs, y), "nll": nll(probs, y)}


class TemperatureScaler:
    """Divide logits by one temperature fitted to minimise validation NLL (Guo et al., 2017).

    Example:
        >>> scaler = TemperatureScaler().fit(val_logits, val_labels)  # doctest: +SKIP
        >>> probs = scaler.predict_proba(test_logits)  # doctest: +SKIP
    """

    def __init__(self, bounds: tuple[float, float] = (0.05, 20.0)):
        self.bounds = bounds

    def fit(self, logits, y) -> TemperatureScaler:
        from scipy.optimize import minimize_scalar

        logits, y = np.asarray(logits, dtype=float), np.asarray(y)
        lo, hi = np.log(self.bounds[0]), np.log(self.bounds[1])
        result = minimize_scalar(lambda log_t: nll(softmax(logits / np.exp(log_t)), y), bounds=(lo, hi),
                                 method="bounded", options={"xatol": 1e-6})
        self.temperature_ = float(np.exp(result.x))
        self.nll_before_ = nll(softmax(logits), y)
        self.nll_after_ = float(result.fun)
        return self

    def predict_proba(self, logits) -> np.ndarray:
        return softmax(np.asarray(logits, dtype=float) / self.temperature_)

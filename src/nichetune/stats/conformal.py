"""Split conformal prediction sets (LAC and APS) and selective prediction.

Both conformal methods fit a threshold on held-out calibration data so that, for exchangeable
data, the set contains the true label with probability at least 1 - alpha.
"""

from __future__ import annotations

import math

import numpy as np


def _aps_scores(probs: np.ndarray) -> np.ndarray:
    """(N, C): for each label, the mass of every label at least as probable, itself included."""
    order = np.argsort(-probs, axis=1, kind="stable")
    sorted_p = np.take_along_axis(probs, order, axis=1)
    cumulative = np.cumsum(sorted_p, axis=1)
    scores = np.empty_like(probs)
    np.put_along_axis(scores, order, cumulative, axis=1)
    return scores


class SplitConformal:
    """Prediction sets with marginal coverage >= 1 - alpha.

    ``method="lac"`` (least ambiguous sets) scores a label by 1 - p(label): smallest sets on
    average. ``method="aps"`` (adaptive prediction sets) scores it by the cumulative mass down
    to it: sets grow where the model is unsure.
    """

    def __init__(self, alpha: float = 0.1, method: str = "lac"):
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        if method not in ("lac", "aps"):
            raise ValueError(f"method must be 'lac' or 'aps', got {method!r}")
        self.alpha = alpha
        self.method = method

    def _scores(self, probs: np.ndarray) -> np.ndarray:
        probs = np.asarray(probs, dtype=float)
        return 1.0 - probs if self.method == "lac" else _aps_scores(probs)

    def fit(self, probs, y) -> SplitConformal:
        y = np.asarray(y)
        scores = self._scores(probs)[np.arange(len(y)), y]
        n = len(scores)
        rank = math.ceil((n + 1) * (1 - self.alpha))
        self.qhat_ = float(np.sort(scores)[rank - 1]) if rank <= n else float("inf")
        self.n_calibration_ = n
        return self

    def predict_sets(self, probs) -> np.ndarray:
        """(N, C) boolean membership."""
        return self._scores(probs) <= self.qhat_ + 1e-12


def set_metrics(sets: np.ndarray, y) -> dict:
    y = np.asarray(y)
    covered = sets[np.arange(len(y)), y]
    sizes = sets.sum(axis=1)
    return {"coverage": float(covered.mean()), "mean_set_size": float(sizes.mean()),
            "singleton_share": float((sizes == 1).mean()), "empty_share": float((sizes == 0).mean())}


def selective_curve(probs, y) -> dict:
    """Accuracy when only the most confident share of predictions is kept, for every share."""
    probs, y = np.asarray(probs, dtype=float), np.asarray(y)
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == y).astype(float)
    order = np.argsort(-confidence, kind="stable")
    kept = np.arange(1, len(y) + 1)
    accuracy = np.cumsum(correct[order]) / kept
    return {"coverage": (kept / len(y)).tolist(), "accuracy": accuracy.tolist(),
            "threshold": confidence[order].tolist()}


def threshold_for_accuracy(curve: dict, target: float) -> dict | None:
    """The largest coverage whose kept predictions reach ``target`` accuracy, and its confidence threshold."""
    best = None
    for cov, acc, thr in zip(curve["coverage"], curve["accuracy"], curve["threshold"], strict=True):
        if acc >= target:
            best = {"target_accuracy": target, "coverage": cov, "accuracy": acc, "confidence_threshold": thr}
    return best

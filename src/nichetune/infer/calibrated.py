"""What a classifier run's evaluation fitted, applied to new texts: the temperature, the conformal set and abstention.

``nichetune classify`` and the server's ``/v1/classify`` both answer through ``calibrated_predictions``, so a
probability served is the probability the CLI prints for the same text.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..run.evaluation import read_eval_metrics
from ..run.paths import RunPaths


@dataclass(frozen=True)
class Calibration:
    """What evaluation fitted on the validation split.

    Attributes:
        temperature: divides the logits before the softmax (temperature scaling).
        alpha: the conformal miscoverage; sets hold the true label with probability >= 1 - alpha.
        qhat: the LAC threshold: a label is in the set when 1 - p(label) <= qhat.
        measured_coverage: the coverage the sets reached on the test split.
        target_accuracy: the accuracy selective prediction aims for.
        confidence_threshold: the lowest confidence kept at that accuracy (None: no threshold reached it).
    """

    temperature: float
    alpha: float
    qhat: float
    measured_coverage: float
    target_accuracy: float
    confidence_threshold: float | None

    def as_dict(self) -> dict:
        return {**asdict(self), "coverage": 1 - self.alpha}


def read_calibration(run_dir: str | Path) -> Calibration | None:
    """The calibration of an evaluated classifier run; None when the run has no evaluation yet."""
    path = RunPaths(run_dir).eval_metrics
    if not path.is_file():
        return None
    metrics = read_eval_metrics(path)
    if "calibration" not in metrics or "conformal" not in metrics:
        return None
    conformal, target = metrics["conformal"], (metrics.get("selective") or {}).get("target")
    return Calibration(temperature=float(metrics["calibration"]["temperature"]), alpha=float(conformal["alpha"]),
                       qhat=float(conformal["lac"]["qhat"]), measured_coverage=float(conformal["lac"]["coverage"]),
                       target_accuracy=float(target["target_accuracy"]) if target else float("nan"),
                       confidence_threshold=float(target["confidence_threshold"]) if target else None)


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` in float64: (N, C) -> (N, C)."""
    z = np.asarray(logits, dtype=np.float64) / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def calibrated_predictions(logits: np.ndarray, labels: list[str], calibration: Calibration | None) -> list[dict]:
    """One answer per row of ``logits`` (N, C): label, probabilities, prediction set and whether to abstain.

    Without a calibration the probabilities are the raw softmax and no set is given (``calibrated`` is false).
    """
    probs = softmax(logits, calibration.temperature if calibration else 1.0)
    out = []
    for row in probs:
        top = int(row.argmax())
        answer = {"label": labels[top], "confidence": float(row[top]),
                  "probabilities": {label: float(p) for label, p in zip(labels, row, strict=True)},
                  "calibrated": calibration is not None, "prediction_set": None, "abstain": False,
                  "abstain_reason": None}
        if calibration is not None:
            members = [labels[i] for i in np.argsort(-row, kind="stable") if 1 - row[i] <= calibration.qhat + 1e-12]
            answer["prediction_set"] = members
            reasons = []
            if len(members) > 1:
                reasons.append(f"the {100 * (1 - calibration.alpha):.0f}% prediction set holds {len(members)} labels")
            if calibration.confidence_threshold is None:
                reasons.append("no confidence threshold reaches the run's target accuracy")
            elif row[top] < calibration.confidence_threshold:
                reasons.append(f"confidence {row[top]:.3f} is under {calibration.confidence_threshold:.3f}, the "
                               f"threshold for accuracy {calibration.target_accuracy:.2f}")
            answer["abstain"] = bool(reasons)
            answer["abstain_reason"] = "; ".join(reasons) or None
        out.append(answer)
    return out

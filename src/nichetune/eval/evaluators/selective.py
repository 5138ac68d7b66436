"""Selective prediction: accuracy against coverage, and the confidence threshold that reaches a target accuracy."""

from __future__ import annotations

from ...html_report import esc
from ...stats.conformal import selective_curve, threshold_for_accuracy
from ..plots import selective_plot
from .base import Evaluator, register_evaluator
from .inputs import ClassifierInputs


def _thin(curve: dict, points: int = 50) -> dict:
    n = len(curve["coverage"])
    idx = sorted({min(n - 1, round(i * (n - 1) / (points - 1))) for i in range(points)}) if n else []
    return {k: [v[i] for i in idx] for k, v in curve.items()}


def evaluate(x: ClassifierInputs) -> dict:
    curve = selective_curve(x.probs_cal, x.y)
    return {"curve": _thin(curve), "target": threshold_for_accuracy(curve, x.target_accuracy)}


def scores(section: dict) -> dict[str, float]:
    """The share of inputs kept at the target accuracy (0 when no threshold reaches it)."""
    target = section["target"]
    return {"coverage_at_target": target["coverage"] if target else 0.0}


def render(section: dict, report) -> list[tuple[str, str]]:
    t = section["target"]
    text = (f"Keeping predictions with confidence at least {t['confidence_threshold']:.3f} covers "
            f"{100 * t['coverage']:.1f}% of inputs at accuracy {100 * t['accuracy']:.1f}%."
            if t else "No confidence threshold reaches the target accuracy.")
    return [("Selective prediction", selective_plot(section) + f"<p>{esc(text)}</p>")]


EVALUATOR = register_evaluator(Evaluator("selective", "Selective prediction", "classification", "coverage_at_target",
                                         True, evaluate, scores, render))

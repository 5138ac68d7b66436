"""Accuracy, macro / micro / weighted F1, and per-class precision, recall, F1 and support."""

from __future__ import annotations

from ...html_report import table
from ...stats.classification import classification_metrics
from .base import Evaluator, register_evaluator
from .inputs import ClassifierInputs


def evaluate(x: ClassifierInputs) -> dict:
    return classification_metrics(x.y, x.pred, x.labels)


def scores(section: dict) -> dict[str, float]:
    return {k: section[k] for k in ("accuracy", "macro_f1", "micro_f1", "weighted_f1")}


def render(section: dict, report) -> list[tuple[str, str]]:
    per_class = [{"label": k, **{n: round(v, 4) if isinstance(v, float) else v for n, v in row.items()}}
                 for k, row in section["per_class"].items()]
    return [("Per class", table(per_class, ["label", "precision", "recall", "f1", "support"]))]


EVALUATOR = register_evaluator(Evaluator("metrics", "Per class", "classification", "accuracy", True,
                                         evaluate, scores, render))

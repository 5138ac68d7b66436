"""Evaluators as small units behind a registry. Adding one = one module calling ``register_evaluator`` +
one entry in ``REPORT_ORDER`` + one row in the evaluator contract table (tests/test_evaluators.py).
"""

from __future__ import annotations

from . import (
    answers,
    baselines,
    calibration,
    conformal,
    copies,
    errors,
    forgetting,
    label_metrics,
    perplexity,
    selective,
    slice_gaps,
)
from .base import EVALUATORS, Evaluator, ReportContext, register_evaluator
from .inputs import ClassifierInputs, GeneratorInputs

# the report's order; an evaluator registered from elsewhere follows these
REPORT_ORDER = tuple(m.EVALUATOR.id for m in (
    label_metrics,
    copies,
    baselines,
    calibration,
    conformal,
    selective,
    slice_gaps,
    errors,
    perplexity,
    answers,
    forgetting,
))


def evaluators_for(head: str) -> list[Evaluator]:
    """The evaluators of runs with this model head, in report order."""
    ranked = sorted(EVALUATORS.values(), key=lambda e: (REPORT_ORDER.index(e.id) if e.id in REPORT_ORDER
                                                        else len(REPORT_ORDER)))
    return [e for e in ranked if e.head == head]


def run_evaluators(head: str, inputs) -> dict:
    """Every applicable evaluator's section keyed by its id, and ``scores``: each one's flat numbers."""
    out: dict = {}
    summary: dict = {}
    for ev in evaluators_for(head):
        section = ev.evaluate(inputs)
        if section is None:
            continue
        out[ev.id] = section
        summary[ev.id] = {"title": ev.title, "primary": ev.primary, "greater_is_better": ev.greater_is_better,
                          "scores": ev.scores(section)}
    out["scores"] = summary
    return out


__all__ = ["EVALUATORS", "ClassifierInputs", "Evaluator", "GeneratorInputs", "ReportContext", "evaluators_for",
           "register_evaluator", "run_evaluators"]

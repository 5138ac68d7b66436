"""What an evaluator is: a small unit with a stable id, a display title, a primary metric and its direction.

``evaluate(inputs)`` returns the evaluator's section of ``eval/metrics.json`` (plain numbers, lists and
dicts of them, keyed by ``id``); ``scores(section)`` flattens it to ``dict[str, float]`` holding
``primary``; ``render(section, report)`` gives the report's ``(title, html)`` sections. Inputs shared by
several evaluators (a classifier's logits, a generator's decoded answers) are computed once by the
inputs object, never by an evaluator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...registries import add_unique


@dataclass(frozen=True)
class ReportContext:
    """What a section's renderer may read besides its own section."""

    run_dir: Path
    metrics: dict
    manifest: Any  # run.manifest.RunManifest


@dataclass(frozen=True)
class Evaluator:
    """One evaluation.

    Attributes:
        id: stable identifier; the key of its section in ``eval/metrics.json``. Never shown to people.
        title: the display name (the report's section heading).
        head: the model head of the runs it applies to (a ``models.heads.HEADS`` key).
        primary: the key of ``scores`` that sums it up.
        greater_is_better: the direction of ``primary``.
        evaluate: ``evaluate(inputs) -> section``, or None when it does not apply to these inputs.
        scores: ``scores(section) -> {name: number}``, flat, holding ``primary``.
        render: ``render(section, report) -> [(title, html), ...]``.
    """

    id: str
    title: str
    head: str
    primary: str
    greater_is_better: bool
    evaluate: Callable[[Any], Any]
    scores: Callable[[Any], dict[str, float]]
    render: Callable[[Any, ReportContext], list[tuple[str, str]]]


EVALUATORS: dict[str, Evaluator] = {}


def register_evaluator(evaluator: Evaluator) -> Evaluator:
    return add_unique(EVALUATORS, evaluator.id, evaluator, "evaluator")

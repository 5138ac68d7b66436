"""The validation metrics each kind of task reports, so a recipe naming another is refused up front.

A recipe's task is ``classification``, ``sft`` or ``completion``; the last two train a causal LM and
share its metrics. The training tasks' ``metrics()`` return exactly these keys (a test holds them equal).
"""

from __future__ import annotations

METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("loss", "accuracy", "macro_f1"),
    "causal": ("loss", "perplexity", "token_accuracy"),
}
LOWER_IS_BETTER = frozenset({"loss", "perplexity"})


def task_kind(task: str) -> str:
    """``classification`` stays itself; ``sft`` and ``completion`` are ``causal``."""
    return "classification" if task == "classification" else "causal"


def metric_names(task: str) -> tuple[str, ...]:
    return METRICS[task_kind(task)]

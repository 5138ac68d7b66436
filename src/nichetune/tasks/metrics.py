"""The validation metrics each model head reports, so a recipe naming another is refused up front.

The task objects' ``metrics()`` return exactly these keys (a test holds them equal).
"""

from __future__ import annotations

METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("loss", "accuracy", "macro_f1"),
    "causal": ("loss", "perplexity", "token_accuracy"),
}
LOWER_IS_BETTER = frozenset({"loss", "perplexity"})


def direction(metric: str) -> str:
    """``min`` for metrics where lower is better, else ``max``."""
    return "min" if metric in LOWER_IS_BETTER else "max"


def metric_names(task: str) -> tuple[str, ...]:
    """The validation metrics of the recipe's ``task``."""
    from .registry import task_spec

    return task_spec(task).metrics

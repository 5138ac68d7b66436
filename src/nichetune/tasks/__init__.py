"""What each task is scored by: the names of its validation metrics and their directions."""

from .metrics import LOWER_IS_BETTER, METRICS, metric_names, task_kind

__all__ = ["LOWER_IS_BETTER", "METRICS", "metric_names", "task_kind"]

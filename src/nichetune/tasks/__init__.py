"""Task arithmetic shared by train and eval: encoding, collation, loss sums, no-grad scoring, and the registry.

Every task the recipe can name is a ``TaskSpec`` (``task_spec(name)``) whose ``build`` gives the object
that encodes rows, collates batches, sums losses and reduces scores. Adding a task is one module that
calls ``register_task``.
"""

from . import causal, classification  # noqa: F401  (each registers its tasks)
from .metrics import LOWER_IS_BETTER, METRICS, direction, metric_names
from .registry import TaskSpec, register_task, task_names, task_spec


def build_task(task: str, labels: list[str] | None, train_cfg, *, virtual_tokens: bool = False):
    """The task object for the recipe's ``task`` (see ``TaskSpec.build``)."""
    return task_spec(task).build(labels, train_cfg, virtual_tokens=virtual_tokens)


__all__ = ["LOWER_IS_BETTER", "METRICS", "TaskSpec", "build_task", "direction", "metric_names", "register_task",
           "task_names", "task_spec"]

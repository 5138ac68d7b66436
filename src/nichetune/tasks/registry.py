"""The recipe's tasks as data: each is one ``TaskSpec``, registered with one call.

"Task" means one thing here: what the recipe asks for (``classification``, ``sft``, ``completion``).
What differs between them lives on the spec (the model head, whether rows carry labels, what is
scored), so code elsewhere asks the spec instead of comparing task names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..data.schema import row_schema
from ..errors import NichetuneError
from ..registries import add_unique
from .metrics import METRICS


@dataclass(frozen=True)
class TaskSpec:
    """What a task needs from the rest of the product.

    Attributes:
        name: the recipe's ``task``.
        head: ``classification`` (a sequence-classification head) or ``causal`` (a language-model head);
            keys the model classes and the validation metrics.
        labelled: rows carry a label (stratified splits, label maps, class weights, per-label evaluation).
        packable: several rows may share one training sequence.
        chat: rows are chat turns whose answers can be decoded and compared with the reference.
        eval_sample: how many test rows the evaluation shows and times.
        primary_metric: what model selection and search optimise by default.
        build: ``build(labels, train_cfg, virtual_tokens=...)`` -> the training/scoring task object.
    """

    name: str
    head: str
    packable: bool
    chat: bool
    eval_sample: int
    primary_metric: str
    build: Callable

    @property
    def labelled(self) -> bool:
        return row_schema(self.name).labelled

    @property
    def metrics(self) -> tuple[str, ...]:
        return METRICS[self.head]


_TASKS: dict[str, TaskSpec] = {}


def register_task(spec: TaskSpec) -> TaskSpec:
    return add_unique(_TASKS, spec.name, spec, "task")


def task_spec(name: str) -> TaskSpec:
    try:
        return _TASKS[name]
    except KeyError:
        raise NichetuneError(f"unknown task {name!r}", hint=f"use one of {sorted(_TASKS)}") from None


def task_names() -> tuple[str, ...]:
    return tuple(_TASKS)

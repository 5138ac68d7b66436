"""What the PEFT-backed methods share: the task type, loading, merging and target-name checks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from torch import nn

from ..errors import NichetuneError
from ..models.architecture import ModelFacts
from ..models.heads import HEADS


def task_type(head: str):
    from peft import TaskType

    return TaskType[HEADS[head].peft_task_type]


def load_peft(folder: Path, cfg, head: str, base: Callable[[], nn.Module]) -> nn.Module:
    from peft import PeftModel

    return PeftModel.from_pretrained(base(), folder)


def merge_peft(model: nn.Module, cfg) -> nn.Module:
    return model.merge_and_unload()


def check_names(key: str, names, facts: ModelFacts) -> None:
    if not isinstance(names, list):  # None (PEFT's default for the architecture) or "all-linear"
        return
    missing = [n for n in names if not facts.has_module(n)]
    if missing:
        examples = sorted({n.rsplit(".", 1)[-1] for n in facts.linear_names})
        raise NichetuneError(f"{key}: {missing} match no module of this {facts.model_type} model",
                             hint=f"name linear layers it has, e.g. {examples}, or use all-linear")


VIRTUAL_TOKENS_CANNOT_MERGE = ("it adds inputs (virtual tokens) that no weight can hold; serve it with its base "
                               "model")

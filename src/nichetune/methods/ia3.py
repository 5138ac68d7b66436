"""IA3 (Liu et al. 2022) through PEFT: learned scaling of keys, values and feed-forward inputs."""

from __future__ import annotations

from typing import Literal

from torch import nn

from ..errors import NichetuneError
from .method import Method, MethodConfigBase, register_method
from .peft_common import check_names, load_peft, merge_peft, task_type


class IA3Config(MethodConfigBase):
    name: Literal["ia3"] = "ia3"
    target_modules: list[str] | None = None
    feedforward_modules: list[str] | None = None


def apply(model: nn.Module, cfg, head: str) -> nn.Module:
    import peft

    config = peft.IA3Config(task_type=task_type(head), target_modules=cfg.target_modules,
                            feedforward_modules=cfg.feedforward_modules)
    return peft.get_peft_model(model, config)


def check(cfg, facts) -> None:
    check_names("method.target_modules", cfg.target_modules, facts)
    check_names("method.feedforward_modules", cfg.feedforward_modules, facts)
    if cfg.feedforward_modules and cfg.target_modules and not set(cfg.feedforward_modules) <= set(cfg.target_modules):
        raise NichetuneError("method.feedforward_modules must be a subset of method.target_modules",
                             hint="add the feed-forward names to target_modules too")


METHOD = register_method(Method("ia3", IA3Config, apply, load=load_peft, merge=merge_peft, check=check))

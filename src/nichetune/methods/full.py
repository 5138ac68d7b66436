"""Full fine-tuning: every parameter trains; the run saves the whole model."""

from __future__ import annotations

from typing import Literal

from torch import nn

from .method import Method, MethodConfigBase, load_whole, register_method, unchanged


class FullConfig(MethodConfigBase):
    name: Literal["full"] = "full"


def apply(model: nn.Module, cfg, head: str) -> nn.Module:
    for p in model.parameters():
        p.requires_grad_(True)
    return model


METHOD = register_method(Method("full", FullConfig, apply, load=load_whole, merge=unchanged, whole_model=True))

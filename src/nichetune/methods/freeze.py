"""Layer freezing and progressive unfreezing (ULMFiT-style gradual unfreezing); the run saves the whole model."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator
from torch import nn

from ..patterns import check_regex
from .layers import is_embedding, layer_index, num_layers, task_head_params
from .method import Method, MethodConfigBase, load_whole, register_method, unchanged


class FreezeConfig(MethodConfigBase):
    """Freeze the embeddings and the first ``layers`` blocks (and/or names matching ``patterns``);
    with ``progressive``, start from the head only and unfreeze one more block from the top every
    ``unfreeze_every`` epochs (ULMFiT)."""

    name: Literal["freeze"] = "freeze"
    layers: int = Field(0, ge=0)
    embeddings: bool = True
    patterns: list[str] = Field(default_factory=list)
    progressive: bool = False
    unfreeze_every: int = Field(1, ge=1)

    @field_validator("patterns")
    @classmethod
    def _regexes(cls, value: list[str]) -> list[str]:
        return [check_regex(p) for p in value]


def _frozen(name: str, cfg, first_trainable_layer: int) -> bool:
    if any(re.search(p, name) for p in cfg.patterns):
        return True
    if cfg.embeddings and is_embedding(name):
        return True
    index = layer_index(name)
    return index is not None and index < first_trainable_layer


def _set(model: nn.Module, cfg, first_trainable_layer: int) -> None:
    head = set(task_head_params(model, model._nichetune_head))
    for name, p in model.named_parameters():
        p.requires_grad_(name in head or not _frozen(name, cfg, first_trainable_layer))


def apply(model: nn.Module, cfg, head: str) -> nn.Module:
    model._nichetune_head = head
    start = num_layers(model) if cfg.progressive else cfg.layers
    _set(model, cfg, start)
    return model


def on_epoch(model: nn.Module, cfg, epoch: int) -> None:
    """Progressive unfreezing: after every ``unfreeze_every`` epochs one more top block trains."""
    if not cfg.progressive:
        return
    total = num_layers(model)
    opened = epoch // cfg.unfreeze_every
    _set(model, cfg, max(cfg.layers, total - opened))


METHOD = register_method(Method("freeze", FreezeConfig, apply, load=load_whole, merge=unchanged, whole_model=True,
                                on_epoch=on_epoch))

"""Layer freezing and progressive unfreezing (ULMFiT-style gradual unfreezing)."""

from __future__ import annotations

import re

from torch import nn

from .layers import is_embedding, layer_index, num_layers, task_head_params


def _frozen(name: str, cfg, first_trainable_layer: int) -> bool:
    if any(re.search(p, name) for p in cfg.patterns):
        return True
    if cfg.embeddings and is_embedding(name):
        return True
    index = layer_index(name)
    return index is not None and index < first_trainable_layer


def _set(model: nn.Module, cfg, first_trainable_layer: int) -> None:
    head = set(task_head_params(model, getattr(model, "_nichetune_task", "causal")))
    for name, p in model.named_parameters():
        p.requires_grad_(name in head or not _frozen(name, cfg, first_trainable_layer))


def apply(model: nn.Module, cfg, task: str) -> nn.Module:
    model._nichetune_task = task
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

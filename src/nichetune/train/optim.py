"""AdamW parameter groups: no decay on biases and norms, layer-wise LR decay, head and named LRs."""

from __future__ import annotations

import re

import torch
from torch import nn

from ..methods.layers import is_embedding, is_head, is_no_decay, layer_index, num_layers


def param_lr(name: str, cfg, n_layers: int) -> float:
    for pattern, lr in cfg.group_lrs.items():
        if re.search(pattern, name):
            return lr
    if is_head(name) and cfg.head_lr is not None:
        return cfg.head_lr
    if cfg.layer_decay < 1.0 and n_layers:
        index = layer_index(name)
        depth = n_layers - index if index is not None else (n_layers + 1 if is_embedding(name) else 0)
        return cfg.lr * cfg.layer_decay**depth
    return cfg.lr


def param_groups(model: nn.Module, cfg) -> list[dict]:
    """One group per (lr, weight decay) pair over the trainable parameters, names kept for checkpoints."""
    n_layers = num_layers(model)
    groups: dict[tuple[float, float], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        key = (param_lr(name, cfg, n_layers), 0.0 if is_no_decay(name) else cfg.weight_decay)
        group = groups.setdefault(key, {"params": [], "names": [], "lr": key[0], "weight_decay": key[1]})
        group["params"].append(p)
        group["names"].append(name)
    return list(groups.values())


def build_optimizer(model: nn.Module, cfg) -> torch.optim.AdamW:
    groups = param_groups(model, cfg)
    for g in groups:
        g["initial_lr"] = g["lr"]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8)


def managed_params(optimizer: torch.optim.Optimizer) -> dict[str, nn.Parameter]:
    """Every parameter the optimizer owns, by name (including ones progressive unfreezing has not opened yet)."""
    return {name: p for g in optimizer.param_groups for name, p in zip(g["names"], g["params"], strict=True)}

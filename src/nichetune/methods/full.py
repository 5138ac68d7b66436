"""Full fine-tuning: every parameter trains."""

from __future__ import annotations

from torch import nn


def apply(model: nn.Module, cfg, task: str) -> nn.Module:
    for p in model.parameters():
        p.requires_grad_(True)
    return model

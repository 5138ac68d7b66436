"""Training-only model setup: frozen weights stored in the autocast dtype."""

from __future__ import annotations

from torch import nn


def cast_frozen(model: nn.Module, dtype) -> int:
    """Store parameters that can never train in the autocast dtype; return how many were cast.

    Under autocast a frozen fp32 weight is cast again at every use (autocast caches casts only for
    weights that require grad); keeping frozen base weights in bf16 removes those copies and halves
    their memory. Only for methods whose base stays frozen for the whole run (adapters, LoRA, ...).
    """
    count = 0
    for p in model.parameters():
        if not p.requires_grad and p.dtype != dtype and p.is_floating_point():
            p.data = p.data.to(dtype)
            count += p.numel()
    return count

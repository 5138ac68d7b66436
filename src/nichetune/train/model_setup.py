"""Training-only model setup: frozen weights stored in the autocast dtype."""

from __future__ import annotations

import torch
from torch import nn


def cast_frozen(model: nn.Module, dtype) -> int:
    """Store parameters that can never train in the autocast dtype; return how many were cast.

    Under autocast a frozen fp32 weight is cast again at every use (autocast caches casts only for
    weights that require grad); keeping frozen base weights in bf16 removes those copies and halves
    their memory. Only for methods whose base stays frozen for the whole run (adapters, LoRA, ...).

    PEFT's layers also cast each input up to their own weights' dtype (fp32) before autocast casts it
    back down for the product: the same arithmetic, two copies of every adapted layer's input per
    step. That input cast is switched off whenever the frozen weights are in a lower precision.
    """
    from peft.tuners.tuners_utils import BaseTunerLayer

    count = 0
    for p in model.parameters():
        if not p.requires_grad and p.dtype != dtype and p.is_floating_point():
            p.data = p.data.to(dtype)
            count += p.numel()
    if dtype != torch.float32:
        for module in model.modules():
            if isinstance(module, BaseTunerLayer):
                module.cast_input_dtype_enabled = False
    return count

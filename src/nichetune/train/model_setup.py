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


def checkpoint_activations(model: nn.Module, every: int) -> None:
    """Recompute every ``every``-th transformer layer's activations in the backward pass instead of keeping them
    (transformers' own activation checkpointing, non-reentrant, so frozen inputs need no gradient hook).

    The layers' inputs are all that stays between the passes; each checkpointed layer runs its forward twice.
    """
    from ..errors import NichetuneError

    hf = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not getattr(hf, "supports_gradient_checkpointing", False):
        raise NichetuneError(f"{type(hf).__name__} does not support activation checkpointing",
                             hint="set train.gradient_checkpointing: 0 for this model")
    hf.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False}, every_n_layers=every)
    if hasattr(hf, "disable_input_require_grads"):  # a hook only the reentrant form needs: it would make the
        hf.disable_input_require_grads()  # embeddings' output carry a gradient that nothing uses

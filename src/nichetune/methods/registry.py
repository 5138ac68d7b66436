"""The method registry. Adding a method = one module + one line here + one contract-table row."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from torch import nn

from ..models.architecture import ModelFacts
from . import adapter, freeze, full, peft_methods
from .configs import MethodConfig


@dataclass(frozen=True)
class Method:
    """How a method changes a model, how it is saved, and whether it can be merged away.

    ``storage`` decides the saved form: ``peft`` (adapter_model.safetensors via PEFT),
    ``bottleneck`` (our adapter tensors), or ``model`` (the whole model).
    """

    name: str
    apply: Callable[[nn.Module, MethodConfig, str], nn.Module]
    storage: Literal["peft", "bottleneck", "model"]
    mergeable: bool
    on_epoch: Callable[[nn.Module, MethodConfig, int], None] | None = None
    virtual_tokens: bool = False  # prepends learned tokens: rows cannot be packed, sequence positions shift
    # refuses (NichetuneError with the reason) a model this method cannot adapt, from its facts alone
    check: Callable[[MethodConfig, ModelFacts, str], None] | None = None


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("full", full.apply, "model", mergeable=True),
        Method("freeze", freeze.apply, "model", mergeable=True, on_epoch=freeze.on_epoch),
        Method("lora", peft_methods.apply_lora, "peft", mergeable=True, check=peft_methods.check_lora),
        Method("dora", peft_methods.apply_lora, "peft", mergeable=True, check=peft_methods.check_lora),
        Method("adapter", adapter.apply, "bottleneck", mergeable=False, check=adapter.check),
        Method("prompt_tuning", peft_methods.apply_prompt, "peft", mergeable=False, virtual_tokens=True),
        Method("prefix_tuning", peft_methods.apply_prompt, "peft", mergeable=False, virtual_tokens=True,
               check=peft_methods.check_prefix),
        Method("p_tuning", peft_methods.apply_prompt, "peft", mergeable=False, virtual_tokens=True),
        Method("ia3", peft_methods.apply_ia3, "peft", mergeable=True, check=peft_methods.check_ia3),
    )
}


def get_method(name: str) -> Method:
    return METHODS[name]


def check_method(cfg: MethodConfig, facts: ModelFacts, task: str) -> None:
    """Refuse, before any weight loads, a model the method cannot adapt (``task``: classification / causal).

    Raises:
        NichetuneError: the reason, and what to use instead.
    """
    method = METHODS[cfg.name]
    if method.check is not None:
        method.check(cfg, facts, task)


def apply_method(model: nn.Module, cfg: MethodConfig, task: str) -> nn.Module:
    """Return ``model`` adapted by ``cfg`` with exactly the method's parameters trainable.

    ``task`` is ``classification`` (the new head always trains) or ``causal``.
    """
    return METHODS[cfg.name].apply(model, cfg, task)

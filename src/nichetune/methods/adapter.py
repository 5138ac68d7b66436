"""Bottleneck adapters (Houlsby et al. 2019; Pfeiffer et al. 2020), ours since PEFT lacks them.

An adapter ``x + up(act(down(x)))`` is attached with a forward hook after each block's attention
output projection (Houlsby only) and feed-forward output projection. ``up`` starts at zero, so the
adapted model begins exactly equal to the base. Only adapters (and a classification head) train.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field
from torch import nn

from ..errors import NichetuneError
from ..models.architecture import ModelFacts
from .layers import layer_index, task_head_params
from .method import Method, MethodConfigBase, register_method

FILE = "bottleneck_adapters.safetensors"

ATTRIBUTE = "nichetune_adapters"
# (attention output, feed-forward output) projection names per architecture family
SITES = {
    "bert": (r"attention.output.dense", r"output.dense"),
    "llama": (r"self_attn.o_proj", r"mlp.down_proj"),
}
_ACT = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU}


class AdapterConfig(MethodConfigBase):
    """Bottleneck adapters (Houlsby: after attention and feed-forward; Pfeiffer: after feed-forward)."""

    name: Literal["adapter"] = "adapter"
    bottleneck: int = Field(32, ge=1)
    placement: Literal["houlsby", "pfeiffer"] = "houlsby"
    activation: Literal["gelu", "relu", "silu"] = "gelu"


class Bottleneck(nn.Module):
    def __init__(self, dim: int, bottleneck: int, activation: str) -> None:
        super().__init__()
        self.down = nn.Linear(dim, bottleneck)
        self.act = _ACT[activation]()
        self.up = nn.Linear(bottleneck, dim)
        nn.init.normal_(self.down.weight, std=1e-2)
        nn.init.zeros_(self.down.bias)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, d) -> (B, T, d)
        return x + self.up(self.act(self.down(x)))


def family(model_type: str) -> str | None:
    for name in SITES:
        if name in model_type or (name == "bert" and model_type in ("roberta", "distilbert", "xlm-roberta")):
            return name
    return None


def _family(model: nn.Module) -> str:
    found = family(getattr(model.config, "model_type", ""))
    if found is None:
        raise ValueError(f"bottleneck adapters do not know where to attach in model type "
                         f"{model.config.model_type!r}; supported: {', '.join(SITES)}")
    return found


def check(cfg, facts: ModelFacts) -> None:
    if family(facts.model_type) is None:
        raise NichetuneError(f"bottleneck adapters do not know where to attach in model type {facts.model_type!r}",
                             hint=f"use a {' or '.join(SITES)} family model, or method lora")


def _sites(model: nn.Module, placement: str) -> list[tuple[str, nn.Linear]]:
    attn, ffn = SITES[_family(model)]
    out = []
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear) or layer_index(name + ".") is None:
            continue
        is_attn = name.endswith(attn)
        is_ffn = name.endswith(ffn) and not is_attn and "attention" not in name
        if is_ffn or (is_attn and placement == "houlsby"):
            out.append((name, module))
    return out


def apply(model: nn.Module, cfg, head: str) -> nn.Module:
    for p in model.parameters():
        p.requires_grad_(False)
    adapters = nn.ModuleDict()
    for name, module in _sites(model, cfg.placement):
        block = Bottleneck(module.out_features, cfg.bottleneck, cfg.activation).to(module.weight.device)
        adapters[name.replace(".", "__")] = block
        module.register_forward_hook(lambda _m, _inp, out, block=block: block(out))
    model.add_module(ATTRIBUTE, adapters)
    fresh = set(task_head_params(model, head))
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(ATTRIBUTE + ".") or name in fresh)
    return model


def adapter_state(model: nn.Module, head: str) -> dict[str, torch.Tensor]:
    """The tensors a bottleneck-adapter run must save: adapters and the task head."""
    fresh = set(task_head_params(model, head))
    return {n: p.detach().clone().contiguous() for n, p in model.named_parameters()
            if n.startswith(ATTRIBUTE + ".") or n in fresh}


def save(model: nn.Module, cfg, head: str, out: Path) -> None:
    from safetensors.torch import save_file

    save_file(adapter_state(model, head), str(out / FILE))


def load(folder: Path, cfg, head: str, base: Callable[[], nn.Module]) -> nn.Module:
    from safetensors.torch import load_file

    model = apply(base(), cfg, head)
    state = load_file(str(folder / FILE))
    missing, unexpected = model.load_state_dict(state, strict=False)
    expected = set(adapter_state(model, head))
    if unexpected or expected - set(state):
        raise ValueError(f"adapter tensors do not match the model: missing {sorted(expected - set(state))[:5]}, "
                         f"unexpected {unexpected[:5]}")
    return model


METHOD = register_method(Method(
    "adapter", AdapterConfig, apply, load=load, save=save, check=check,
    cannot_merge="it adds computation (a bottleneck after each block) that no base weight can hold; serve it "
                 "with its base model"))

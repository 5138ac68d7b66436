"""Bottleneck adapters (Houlsby et al. 2019; Pfeiffer et al. 2020), ours since PEFT lacks them.

An adapter ``x + up(act(down(x)))`` is attached with a forward hook after each block's attention
output projection (Houlsby only) and feed-forward output projection. ``up`` starts at zero, so the
adapted model begins exactly equal to the base. Only adapters (and a classification head) train.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import NichetuneError
from ..models.architecture import ModelFacts
from .layers import layer_index, task_head_params

ATTRIBUTE = "nichetune_adapters"
# (attention output, feed-forward output) projection names per architecture family
SITES = {
    "bert": (r"attention.output.dense", r"output.dense"),
    "llama": (r"self_attn.o_proj", r"mlp.down_proj"),
}
_ACT = {"gelu": nn.GELU, "relu": nn.ReLU, "silu": nn.SiLU}


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


def check(cfg, facts: ModelFacts, task: str) -> None:
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


def apply(model: nn.Module, cfg, task: str) -> nn.Module:
    for p in model.parameters():
        p.requires_grad_(False)
    adapters = nn.ModuleDict()
    for name, module in _sites(model, cfg.placement):
        block = Bottleneck(module.out_features, cfg.bottleneck, cfg.activation).to(module.weight.device)
        adapters[name.replace(".", "__")] = block
        module.register_forward_hook(lambda _m, _inp, out, block=block: block(out))
    model.add_module(ATTRIBUTE, adapters)
    head = set(task_head_params(model, task))
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith(ATTRIBUTE + ".") or name in head)
    return model


def adapter_state(model: nn.Module, task: str) -> dict[str, torch.Tensor]:
    """The tensors a bottleneck-adapter run must save: adapters and the task head."""
    head = set(task_head_params(model, task))
    return {n: p.detach().clone().contiguous() for n, p in model.named_parameters()
            if n.startswith(ATTRIBUTE + ".") or n in head}

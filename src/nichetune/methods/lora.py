"""LoRA (Hu et al. 2021) and DoRA (Liu et al. 2024) through PEFT: low-rank updates that merge into the weights."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from torch import nn

from .method import Method, MethodConfigBase, register_method
from .peft_common import check_names, load_peft, merge_peft, task_type


class LoraConfig(MethodConfigBase):
    name: Literal["lora"] = "lora"
    r: int = Field(8, ge=1)
    alpha: float = Field(16, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] | None = None
    rslora: bool = False


class DoraConfig(LoraConfig):
    name: Literal["dora"] = "dora"  # type: ignore[assignment]


def apply(model: nn.Module, cfg, head: str) -> nn.Module:
    import peft

    config = peft.LoraConfig(task_type=task_type(head), r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                             target_modules=cfg.target_modules, use_rslora=cfg.rslora, use_dora=cfg.name == "dora")
    return peft.get_peft_model(model, config)


def check(cfg, facts) -> None:
    check_names("method.target_modules", cfg.target_modules, facts)


LORA = register_method(Method("lora", LoraConfig, apply, load=load_peft, merge=merge_peft, check=check))
DORA = register_method(Method("dora", DoraConfig, apply, load=load_peft, merge=merge_peft, check=check))

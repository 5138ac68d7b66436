"""Prompt tuning (Lester et al. 2021) through PEFT: learned virtual tokens before the input."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from torch import nn

from .method import Method, MethodConfigBase, register_method
from .peft_common import VIRTUAL_TOKENS_CANNOT_MERGE, load_peft, task_type


class PromptTuningConfig(MethodConfigBase):
    name: Literal["prompt_tuning"] = "prompt_tuning"
    num_virtual_tokens: int = Field(16, ge=1)
    init_text: str | None = None


def apply(model: nn.Module, cfg, head: str) -> nn.Module:
    import peft

    common = {"task_type": task_type(head), "num_virtual_tokens": cfg.num_virtual_tokens}
    if cfg.init_text:
        name = getattr(model.config, "_name_or_path", None)
        config = peft.PromptTuningConfig(**common, prompt_tuning_init=peft.PromptTuningInit.TEXT,
                                         prompt_tuning_init_text=cfg.init_text, tokenizer_name_or_path=name)
    else:
        config = peft.PromptTuningConfig(**common)
    return peft.get_peft_model(model, config)


METHOD = register_method(Method("prompt_tuning", PromptTuningConfig, apply, load=load_peft, virtual_tokens=True,
                                cannot_merge=VIRTUAL_TOKENS_CANNOT_MERGE))

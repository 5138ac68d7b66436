"""P-tuning (Liu et al. 2021) through PEFT: virtual tokens produced by a small prompt encoder."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from torch import nn

from .method import Method, MethodConfigBase, register_method
from .peft_common import VIRTUAL_TOKENS_CANNOT_MERGE, load_peft, task_type


class PTuningConfig(MethodConfigBase):
    name: Literal["p_tuning"] = "p_tuning"
    num_virtual_tokens: int = Field(16, ge=1)
    encoder_hidden_size: int = Field(128, ge=1)


def apply(model: nn.Module, cfg, head: str) -> nn.Module:
    import peft

    config = peft.PromptEncoderConfig(task_type=task_type(head), num_virtual_tokens=cfg.num_virtual_tokens,
                                      encoder_hidden_size=cfg.encoder_hidden_size)
    return peft.get_peft_model(model, config)


METHOD = register_method(Method("p_tuning", PTuningConfig, apply, load=load_peft, virtual_tokens=True,
                                cannot_merge=VIRTUAL_TOKENS_CANNOT_MERGE))

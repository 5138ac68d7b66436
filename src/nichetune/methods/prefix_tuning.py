"""Prefix tuning (Li & Liang 2021) through PEFT: learned keys and values prepended in every layer."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from torch import nn

from ..errors import NichetuneError
from .method import Method, MethodConfigBase, register_method
from .peft_common import VIRTUAL_TOKENS_CANNOT_MERGE, load_peft, task_type


class PrefixTuningConfig(MethodConfigBase):
    name: Literal["prefix_tuning"] = "prefix_tuning"
    num_virtual_tokens: int = Field(16, ge=1)
    projection: bool = False


def apply(model: nn.Module, cfg, head: str) -> nn.Module:
    import peft

    config = peft.PrefixTuningConfig(task_type=task_type(head), num_virtual_tokens=cfg.num_virtual_tokens,
                                     prefix_projection=cfg.projection)
    return peft.get_peft_model(model, config)


def check(cfg, facts) -> None:
    """PEFT hands a sequence classifier's prefix to ``forward(past_key_values=...)``; it refuses models without it
    (a causal LM takes the prefix through its own cache path)."""
    from peft import TaskType

    if task_type(facts.head) == TaskType.SEQ_CLS and "past_key_values" not in facts.forward_params:
        import transformers

        raise NichetuneError(
            f"prefix tuning needs a classifier whose forward accepts past_key_values; {facts.model_type} under "
            f"transformers {transformers.__version__} takes no such argument, so PEFT cannot attach the prefix",
            hint="use prompt_tuning or p_tuning (virtual tokens at the input), or lora")


METHOD = register_method(Method("prefix_tuning", PrefixTuningConfig, apply, load=load_peft, virtual_tokens=True,
                                check=check, cannot_merge=VIRTUAL_TOKENS_CANNOT_MERGE))

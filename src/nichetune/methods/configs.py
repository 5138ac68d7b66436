"""Each method's typed configuration; ``name`` selects the method in a recipe."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..patterns import check_regex


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FullConfig(_Cfg):
    name: Literal["full"] = "full"


class FreezeConfig(_Cfg):
    """Freeze the embeddings and the first ``layers`` blocks (and/or names matching ``patterns``);
    with ``progressive``, start from the head only and unfreeze one more block from the top every
    ``unfreeze_every`` epochs (ULMFiT)."""

    name: Literal["freeze"] = "freeze"
    layers: int = Field(0, ge=0)
    embeddings: bool = True
    patterns: list[str] = Field(default_factory=list)
    progressive: bool = False
    unfreeze_every: int = Field(1, ge=1)

    @field_validator("patterns")
    @classmethod
    def _regexes(cls, value: list[str]) -> list[str]:
        return [check_regex(p) for p in value]


class LoraConfig(_Cfg):
    name: Literal["lora"] = "lora"
    r: int = Field(8, ge=1)
    alpha: float = Field(16, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | Literal["all-linear"] | None = None
    rslora: bool = False


class DoraConfig(LoraConfig):
    name: Literal["dora"] = "dora"  # type: ignore[assignment]


class AdapterConfig(_Cfg):
    """Bottleneck adapters (Houlsby: after attention and feed-forward; Pfeiffer: after feed-forward)."""

    name: Literal["adapter"] = "adapter"
    bottleneck: int = Field(32, ge=1)
    placement: Literal["houlsby", "pfeiffer"] = "houlsby"
    activation: Literal["gelu", "relu", "silu"] = "gelu"


class PromptTuningConfig(_Cfg):
    name: Literal["prompt_tuning"] = "prompt_tuning"
    num_virtual_tokens: int = Field(16, ge=1)
    init_text: str | None = None


class PrefixTuningConfig(_Cfg):
    name: Literal["prefix_tuning"] = "prefix_tuning"
    num_virtual_tokens: int = Field(16, ge=1)
    projection: bool = False


class PTuningConfig(_Cfg):
    name: Literal["p_tuning"] = "p_tuning"
    num_virtual_tokens: int = Field(16, ge=1)
    encoder_hidden_size: int = Field(128, ge=1)


class IA3Config(_Cfg):
    name: Literal["ia3"] = "ia3"
    target_modules: list[str] | None = None
    feedforward_modules: list[str] | None = None


MethodConfig = (FullConfig | FreezeConfig | LoraConfig | DoraConfig | AdapterConfig | PromptTuningConfig
                | PrefixTuningConfig | PTuningConfig | IA3Config)

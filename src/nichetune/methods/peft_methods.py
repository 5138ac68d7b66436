"""LoRA, DoRA, IA3 and prompt / prefix / P-tuning, composed from PEFT (never subclassed)."""

from __future__ import annotations

from torch import nn

from ..errors import NichetuneError
from ..models.architecture import ModelFacts


def _task_type(task: str):
    from peft import TaskType

    return TaskType.SEQ_CLS if task == "classification" else TaskType.CAUSAL_LM


def apply_lora(model: nn.Module, cfg, task: str) -> nn.Module:
    import peft

    config = peft.LoraConfig(task_type=_task_type(task), r=cfg.r, lora_alpha=cfg.alpha, lora_dropout=cfg.dropout,
                             target_modules=cfg.target_modules, use_rslora=cfg.rslora, use_dora=cfg.name == "dora")
    return peft.get_peft_model(model, config)


def apply_ia3(model: nn.Module, cfg, task: str) -> nn.Module:
    import peft

    config = peft.IA3Config(task_type=_task_type(task), target_modules=cfg.target_modules,
                            feedforward_modules=cfg.feedforward_modules)
    return peft.get_peft_model(model, config)


def apply_prompt(model: nn.Module, cfg, task: str) -> nn.Module:
    import peft

    common = {"task_type": _task_type(task), "num_virtual_tokens": cfg.num_virtual_tokens}
    if cfg.name == "prompt_tuning":
        if cfg.init_text:
            name = getattr(model.config, "_name_or_path", None)
            config = peft.PromptTuningConfig(**common, prompt_tuning_init=peft.PromptTuningInit.TEXT,
                                             prompt_tuning_init_text=cfg.init_text, tokenizer_name_or_path=name)
        else:
            config = peft.PromptTuningConfig(**common)
    elif cfg.name == "prefix_tuning":
        config = peft.PrefixTuningConfig(**common, prefix_projection=cfg.projection)
    else:
        config = peft.PromptEncoderConfig(**common, encoder_hidden_size=cfg.encoder_hidden_size)
    return peft.get_peft_model(model, config)


def _check_names(key: str, names, facts: ModelFacts) -> None:
    if not isinstance(names, list):  # None (PEFT's default for the architecture) or "all-linear"
        return
    missing = [n for n in names if not facts.has_module(n)]
    if missing:
        examples = sorted({n.rsplit(".", 1)[-1] for n in facts.linear_names})
        raise NichetuneError(f"{key}: {missing} match no module of this {facts.model_type} model",
                             hint=f"name linear layers it has, e.g. {examples}, or use all-linear")


def check_lora(cfg, facts: ModelFacts, task: str) -> None:
    _check_names("method.target_modules", cfg.target_modules, facts)


def check_ia3(cfg, facts: ModelFacts, task: str) -> None:
    _check_names("method.target_modules", cfg.target_modules, facts)
    _check_names("method.feedforward_modules", cfg.feedforward_modules, facts)
    if cfg.feedforward_modules and cfg.target_modules and not set(cfg.feedforward_modules) <= set(cfg.target_modules):
        raise NichetuneError("method.feedforward_modules must be a subset of method.target_modules",
                             hint="add the feed-forward names to target_modules too")


def check_prefix(cfg, facts: ModelFacts, task: str) -> None:
    """PEFT hands a classifier's prefix to ``forward(past_key_values=...)``; it refuses models without it."""
    if task == "classification" and "past_key_values" not in facts.forward_params:
        import transformers

        raise NichetuneError(
            f"prefix tuning needs a classifier whose forward accepts past_key_values; {facts.model_type} under "
            f"transformers {transformers.__version__} takes no such argument, so PEFT cannot attach the prefix",
            hint="use prompt_tuning or p_tuning (virtual tokens at the input), or lora")

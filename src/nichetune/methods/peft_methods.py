"""LoRA, DoRA, IA3 and prompt / prefix / P-tuning, composed from PEFT (never subclassed)."""

from __future__ import annotations

from torch import nn


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

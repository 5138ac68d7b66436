"""Loading one target's weights for serving: a PEFT adapter into a shared base, a whole run, an export, a model.

Every path goes through the checks the rest of nichetune uses (safetensors only, sizes against the manifest,
no remote code).
"""

from __future__ import annotations

from typing import Any

from .targets import ENCODER, Target


def load_shared_adapter(target: Target, shared: Any | None, dtype) -> tuple[Any, Any]:
    """``(peft_model, tokenizer)``: a new PeftModel on a fresh base when ``shared`` is None, else ``shared`` with
    this target's adapter added under the target's name."""
    from peft import PeftModel

    from ..run.loading import checked_weights, read_run, run_base

    tokenizer = checked_weights(target.weights)
    if shared is None:
        manifest, recipe = read_run(target.record)
        model = PeftModel.from_pretrained(run_base(manifest, recipe), target.weights, adapter_name=target.name)
    else:
        model = shared
        model.load_adapter(target.weights, adapter_name=target.name)
    return model.to(dtype).eval(), tokenizer


def load_own_run(target: Target, dtype) -> tuple[Any, Any]:
    from ..run.loading import load_run

    run = load_run(target.record, dtype=dtype, weights=target.weights)
    return run.model, run.tokenizer


def load_export(target: Target) -> tuple[Any, Any, Any]:
    """``(model, tokenizer, logits)`` of an export through its format's own loader (ONNX gives only logits)."""
    from ..export.registry import FORMATS

    runner = FORMATS[target.export_format].load(target.weights, target.head, target.max_length)
    logits = runner.logits if runner.model is None else None
    return runner.model, runner.tokenizer, logits


def load_model(target: Target, dtype) -> tuple[Any, Any]:
    from ..models import loading

    loader = loading.load_encoder if target.head == ENCODER else loading.load_causal_lm
    name = {"bfloat16": "bf16", "float16": "fp16"}.get(str(dtype).removeprefix("torch."), "fp32")
    return loader(str(target.weights), dtype=name, device="cpu")

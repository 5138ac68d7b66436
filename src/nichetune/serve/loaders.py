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


def load_export(target: Target, dtype) -> tuple[Any, Any, Any]:
    """``(model, tokenizer, logits)`` of an export through its format's own loader (ONNX gives only logits).

    A plain (unquantized) torch export is cast to ``dtype``: a merged fp32 export of a generator runs in bf16
    where the CPU has it, as a run does.
    """
    from ..export.registry import FORMATS

    runner = FORMATS[target.export_format].load(target.weights, target.head, target.max_length)
    logits = runner.logits if runner.model is None else None
    model = runner.model
    if model is not None and getattr(model, "hf_quantizer", None) is None and model.dtype != dtype:
        model = model.to(dtype)
    return model, runner.tokenizer, logits


def load_model(target: Target, dtype) -> tuple[Any, Any]:
    from ..models import loading

    loader = loading.load_encoder if target.head == ENCODER else loading.load_causal_lm
    name = {"bfloat16": "bf16", "float16": "fp16"}.get(str(dtype).removeprefix("torch."), "fp32")
    return loader(str(target.weights), dtype=name, device="cpu")


PROBES = ("ok", "The tablets worked within a day and the side effects were mild.",
          "I stopped after two weeks: headaches every morning, no relief at all, and my doctor agreed it was "
          "not working for me, so we are trying something else now.")


def onnx_classifier(target: Target, model, tokenizer):
    """An onnxruntime runner compiled from the loaded torch classifier, checked against it on probe texts.

    Compiled once per weights folder into the cache (keyed by the weights' sizes and times). Returns
    ``(logits_fn, max_diff)``, or ``(None, reason)`` when it cannot be compiled or its logits differ from torch's
    by more than 1e-4 (then torch serves).
    """
    import hashlib
    import logging

    import numpy as np

    from ..atomic import atomic_dir
    from ..cache import cache_dir
    from ..export.onnx import write_onnx_classifier
    from ..export.onnx_runtime import OnnxClassifier
    from ..tasks.scoring import classifier_logits

    files = sorted(p for p in target.weights.rglob("*") if p.is_file())
    stamp = "|".join(f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)
    folder = cache_dir() / "serve-onnx" / hashlib.sha256(stamp.encode()).hexdigest()[:24]
    try:
        if not (folder / "onnx.json").is_file():
            with atomic_dir(folder) as tmp:
                write_onnx_classifier(model, tokenizer, tmp, target.max_length)
        runner = OnnxClassifier(folder)
        reference = classifier_logits(model, tokenizer, list(PROBES), max_length=target.max_length)
        diff = float(np.abs(runner.logits(list(PROBES)) - reference).max())
    except Exception as exc:  # an architecture the exporter cannot trace, a missing extra: torch serves
        logging.getLogger("nichetune.serve").warning("%s: serving with torch, ONNX compile failed: %s",
                                                     target.name, exc)
        return None, f"compile failed: {type(exc).__name__}"
    if diff > 1e-4:
        return None, f"ONNX logits differ from torch's by {diff:.1e}"
    return runner, diff

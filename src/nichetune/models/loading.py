"""Load tokenizers and models from resolved folders with safe defaults."""

from __future__ import annotations

from typing import Any

from ..errors import ModelNotAvailableError
from ..hardware import pick_device, pick_dtype
from .resolve import ResolvedModel, resolve_model


def _resolved(model: str | ResolvedModel, **safety: bool) -> ResolvedModel:
    return model if isinstance(model, ResolvedModel) else resolve_model(model, **safety)


def _load_kwargs(allow_pickle: bool, trust_remote_code: bool) -> dict[str, Any]:
    return {"use_safetensors": not allow_pickle, "trust_remote_code": trust_remote_code}


def load_tokenizer(model: str | ResolvedModel, *, allow_pickle: bool = False, trust_remote_code: bool = False):
    """Load the tokenizer saved with a model; a pad token is set (to EOS) when missing."""
    from transformers import AutoTokenizer

    resolved = _resolved(model, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
    tokenizer = AutoTokenizer.from_pretrained(resolved.path, trust_remote_code=trust_remote_code)
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _load(auto_cls_name: str, model, dtype: str, device: str, allow_pickle: bool, trust_remote_code: bool):
    import transformers

    resolved = _resolved(model, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
    dev = pick_device(device)
    if resolved.source == "run" and resolved.path.name == "adapter":
        raise ModelNotAvailableError(f"{resolved.reference} is an adapter run: it loads on top of its base model",
                                     hint="load it with nichetune.infer.loading or nichetune.load_run")
    if auto_cls_name == "AutoModelForCausalLM" and resolved.architectures and not resolved.is_causal_lm:
        # transformers would bolt an untrained LM head onto an encoder and "generate" random tokens
        raise ModelNotAvailableError(
            f"{resolved.reference} is a {', '.join(resolved.architectures)}, not a causal language model, so it "
            "cannot generate text", hint="use a chat or causal LM (e.g. smollm2-135m-instruct); to label text "
            f"with {resolved.reference}, use nichetune classify")
    auto_cls = getattr(transformers, auto_cls_name)
    loaded = auto_cls.from_pretrained(
        resolved.path, dtype=pick_dtype(dtype, dev), **_load_kwargs(allow_pickle, trust_remote_code)
    )
    loaded.to(dev).eval()
    if auto_cls_name == "AutoModelForSequenceClassification":
        from .similarity_prior import attach_saved

        attach_saved(loaded, resolved.path)
    tokenizer = load_tokenizer(resolved, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
    return loaded, tokenizer


def load_causal_lm(
    model: str | ResolvedModel,
    *,
    dtype: str = "auto",
    device: str = "auto",
    allow_pickle: bool = False,
    trust_remote_code: bool = False,
):
    """Return ``(model, tokenizer)`` for a causal LM, in eval mode on the chosen device.

    ``dtype="auto"`` uses bf16 on GPUs and on CPUs with native bf16 instructions, else fp32.
    """
    return _load("AutoModelForCausalLM", model, dtype, device, allow_pickle, trust_remote_code)


def load_sequence_classifier(
    model: str | ResolvedModel, *, dtype: str = "fp32", device: str = "auto",
    allow_pickle: bool = False, trust_remote_code: bool = False,
):
    """Return ``(model, tokenizer)`` for a model with a sequence-classification head."""
    return _load("AutoModelForSequenceClassification", model, dtype, device, allow_pickle, trust_remote_code)


def load_encoder(
    model: str | ResolvedModel, *, dtype: str = "fp32", device: str = "auto",
    allow_pickle: bool = False, trust_remote_code: bool = False,
):
    """Return ``(model, tokenizer)`` for a bare encoder (no task head)."""
    return _load("AutoModel", model, dtype, device, allow_pickle, trust_remote_code)

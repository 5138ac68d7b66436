"""A model reference for inference: an embedded model, a folder, a hub id, or a nichetune run (base + adapter)."""

from __future__ import annotations

from pathlib import Path

from ..hardware import pick_device, pick_dtype
from ..models import loading
from ..models.resolve import ResolvedModel, resolve_model
from ..run.loading import is_adapter_run, load_run, resolve_run


def resolve(model: str | Path | ResolvedModel, **safety: bool) -> ResolvedModel:
    """``resolve_model``, plus a finished adapter run resolved to its base's config with the run's head."""
    if isinstance(model, ResolvedModel):
        return model
    if is_adapter_run(model):
        return resolve_run(model)
    return resolve_model(model, **safety)


def run_folder(resolved: ResolvedModel) -> Path | None:
    """The run directory a resolved reference came from (its ``model/`` or ``adapter/`` folder's parent)."""
    return resolved.path.parent if resolved.source == "run" else None


def _load(plain_loader, model, dtype: str, device: str, allow_pickle: bool, trust_remote_code: bool):
    resolved = resolve(model, allow_pickle=allow_pickle, trust_remote_code=trust_remote_code)
    if resolved.source == "run" and resolved.path.name == "adapter":
        dev = pick_device(device)
        run = load_run(resolved.path.parent, dtype=pick_dtype(dtype, dev))  # the run's own tokenizer and template
        return run.model.to(dev).eval(), run.tokenizer
    return plain_loader(resolved, dtype=dtype, device=device, allow_pickle=allow_pickle,
                        trust_remote_code=trust_remote_code)


def load_causal_lm(model, *, dtype: str = "auto", device: str = "auto", allow_pickle: bool = False,
                   trust_remote_code: bool = False):
    """``(model, tokenizer)`` of a causal LM or a causal-LM run (see ``models.loading.load_causal_lm``)."""
    return _load(loading.load_causal_lm, model, dtype, device, allow_pickle, trust_remote_code)


def load_sequence_classifier(model, *, dtype: str = "fp32", device: str = "auto", allow_pickle: bool = False,
                             trust_remote_code: bool = False):
    """``(model, tokenizer)`` of a sequence classifier or a classifier run."""
    return _load(loading.load_sequence_classifier, model, dtype, device, allow_pickle, trust_remote_code)

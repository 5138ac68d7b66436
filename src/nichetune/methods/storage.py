"""Save, reload and merge adapted models; safetensors only."""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from . import adapter
from .registry import METHODS, apply_method

BOTTLENECK_FILE = "bottleneck_adapters.safetensors"
METHOD_FILE = "nichetune_method.json"


def save_adapted(model: nn.Module, cfg, task: str, out_dir: str | Path) -> Path:
    """Write what the method needs to rebuild the model on top of its base into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    storage = METHODS[cfg.name].storage
    if storage == "peft":
        model.save_pretrained(out, safe_serialization=True)
    elif storage == "bottleneck":
        from safetensors.torch import save_file

        save_file(adapter.adapter_state(model, task), str(out / BOTTLENECK_FILE))
    else:
        model.save_pretrained(out, safe_serialization=True)
    (out / METHOD_FILE).write_text(json.dumps({"method": cfg.model_dump(), "task": task}, indent=2) + "\n")
    return out


def load_adapted(base: nn.Module, cfg, task: str, saved_dir: str | Path) -> nn.Module:
    """Rebuild an adapted model from a freshly loaded ``base`` and what ``save_adapted`` wrote.

    For ``model`` storage the saved folder is itself a full model: load it with from_pretrained instead.
    """
    saved = Path(saved_dir)
    storage = METHODS[cfg.name].storage
    if storage == "peft":
        from peft import PeftModel

        return PeftModel.from_pretrained(base, saved)
    if storage == "bottleneck":
        from safetensors.torch import load_file

        model = apply_method(base, cfg, task)
        state = load_file(str(saved / BOTTLENECK_FILE))
        missing, unexpected = model.load_state_dict(state, strict=False)
        expected = set(adapter.adapter_state(model, task))
        if unexpected or expected - set(state):
            raise ValueError(f"adapter tensors do not match the model: missing {sorted(expected - set(state))[:5]}, "
                             f"unexpected {unexpected[:5]}")
        return model
    raise ValueError("a full-model run is loaded with from_pretrained on its model/ folder")


def merge_adapted(model: nn.Module, cfg) -> nn.Module:
    """Fold the method into plain weights (LoRA, DoRA, IA3) or return the plain model (full, freeze)."""
    method = METHODS[cfg.name]
    if not method.mergeable:
        raise ValueError(f"{cfg.name} cannot be merged into the base weights: it adds computation "
                         "(bottleneck adapters) or inputs (virtual tokens); serve it with its base model")
    if method.storage == "peft":
        return model.merge_and_unload()
    return model

"""Save, reload and merge adapted models through each method's own functions; safetensors only."""

from __future__ import annotations

import json
from pathlib import Path

from torch import nn

from .registry import METHODS

METHOD_FILE = "nichetune_method.json"


def save_adapted(model: nn.Module, cfg, head: str, out_dir: str | Path) -> Path:
    """Write what the method needs to rebuild the model (on top of its base, unless whole) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    METHODS[cfg.name].save(model, cfg, head, out)
    (out / METHOD_FILE).write_text(json.dumps({"method": cfg.model_dump(), "head": head}, indent=2) + "\n")
    return out


def load_adapted(base, cfg, head: str, saved_dir: str | Path) -> nn.Module:
    """Rebuild the adapted model from what ``save_adapted`` wrote.

    ``base`` is the fresh base model, or a function that builds it (called only by methods that need one).
    """
    make_base = base if callable(base) and not isinstance(base, nn.Module) else (lambda: base)
    return METHODS[cfg.name].load(Path(saved_dir), cfg, head, make_base)


def merge_adapted(model: nn.Module, cfg) -> nn.Module:
    """Fold the method into plain weights (LoRA, DoRA, IA3), or the model itself (full, freeze).

    Raises:
        ValueError: the method cannot be merged, with the reason.
    """
    method = METHODS[cfg.name]
    if method.merge is None:
        raise ValueError(f"{cfg.name} cannot be merged into the base weights: {method.cannot_merge}")
    return method.merge(model, cfg)

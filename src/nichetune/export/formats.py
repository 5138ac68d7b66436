"""The forms a run can be exported in, as a registry: what each builds from a loaded run and what it needs."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..methods.registry import METHODS
from ..run.loading import LoadedRun
from .merged import merged_model
from .quantize import int8_dynamic, state_mb, to_bf16


def folder_mb(path: Path) -> float:
    path = Path(path)
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20


def saved_mb(model) -> float:
    """Size on disk of ``model`` saved as safetensors."""
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        return folder_mb(Path(tmp))


@dataclass(frozen=True)
class ExportFormat:
    """One export: ``build(run) -> model``, its size in MB, and what it is.

    ``needs_merge``: only for methods that merge into the weights. ``same_as_tuned_for_whole_models``: a
    whole-model run (full, freeze) already is this form, so measuring it again adds nothing.
    """

    name: str
    note: str
    build: Callable[[LoadedRun], object]
    size_mb: Callable[[object], float]
    needs_merge: bool = True
    same_as_tuned_for_whole_models: bool = False

    def applies_to(self, method_name: str) -> bool:
        method = METHODS[method_name]
        if self.needs_merge and not method.mergeable:
            return False
        return not (self.same_as_tuned_for_whole_models and method.whole_model)


FORMATS: dict[str, ExportFormat] = {f.name: f for f in (
    ExportFormat("merged", "adapter folded into the weights", merged_model, saved_mb,
                 same_as_tuned_for_whole_models=True),
    ExportFormat("merged-bf16", "merged, weights in bf16", lambda run: to_bf16(merged_model(run)), saved_mb),
    ExportFormat("int8-dynamic", "merged, linear layers int8 per channel (dynamic)",
                 lambda run: int8_dynamic(merged_model(run)), state_mb),
)}


def export_model(run: LoadedRun, name: str):
    """``(model, size in MB, note)`` of export ``name`` of a loaded run."""
    fmt = FORMATS[name]
    model = fmt.build(run)
    return model, fmt.size_mb(model), fmt.note

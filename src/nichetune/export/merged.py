"""The adapter folded into the base weights, written as a plain transformers folder with its manifest."""

from __future__ import annotations

from pathlib import Path

from ..atomic import atomic_dir
from ..errors import NichetuneError
from ..hashing import write_manifest
from ..methods.registry import METHODS
from ..methods.storage import merge_adapted
from ..run.loading import LoadedRun, load_run, read_run


def refuse_unmergeable(method_name: str) -> None:
    """Raises NichetuneError, with the method's reason, when its runs cannot be merged."""
    method = METHODS[method_name]
    if not method.mergeable:
        raise NichetuneError(f"{method_name} cannot be merged into the base weights: {method.cannot_merge}",
                             hint="serve the run directory itself; it loads the base model and the adapter")


def merged_model(run: LoadedRun):
    """The run's model with its method folded into plain weights (identical outputs), merged in place: the run's
    model is spent afterwards, so whoever compares against the run loads it again (export's parity does).

    A copy would hold the weights twice while the export is written: SmolLM2-135M's merged export, alone, peaked at
    1.80 GB that way against 1.61 GB in place.
    """
    refuse_unmergeable(run.recipe.method.name)
    return merge_adapted(run.model, run.recipe.method)


def merge_run(run_dir: str | Path, out: str | Path) -> Path:
    """Fold a run's adapter into the base weights and write a plain transformers model folder.

    Raises:
        NichetuneError: the run's method cannot be merged (bottleneck adapters, virtual tokens).
    """
    _, recipe = read_run(run_dir)
    refuse_unmergeable(recipe.method.name)  # before any weight loads
    run = load_run(run_dir)
    merged = merged_model(run)
    with atomic_dir(Path(out)) as tmp:
        merged.save_pretrained(tmp, safe_serialization=True)
        run.tokenizer.save_pretrained(tmp)
        write_manifest(tmp, extra={"kind": "nichetune-merged", "run": str(Path(run_dir).resolve()),
                                   "method": recipe.method.name, "base": run.manifest.base_model.model_dump()})
    return Path(out)

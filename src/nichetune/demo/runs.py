"""Train and evaluate for the demo, reusing a finished run of the identical recipe (``--fresh`` redoes it)."""

from __future__ import annotations

import json
from pathlib import Path


def train_or_reuse(recipe, *, fresh: bool, say) -> dict:
    """The run's manifest: reused when ``output_dir`` holds a finished run of exactly this recipe."""
    from ..run.directory import MANIFEST, same_recipe
    from ..train.run import train

    run_dir = Path(recipe.output_dir)
    if not fresh and (run_dir / MANIFEST).is_file() and same_recipe(run_dir, recipe):
        say(f"reusing the finished run in {run_dir} (same recipe; --fresh retrains)")
        return json.loads((run_dir / MANIFEST).read_text())
    return train(recipe, fresh=(run_dir / MANIFEST).is_file() or fresh)


def evaluate_or_reuse(run_dir: Path, *, fresh: bool, say, **options) -> dict:
    """``eval/metrics.json``, reused when it is newer than the run's weights, else ``evaluate_run(**options)``."""
    from ..eval.run import METRICS, evaluate_run
    from ..run.directory import MANIFEST

    metrics = run_dir / METRICS
    if not fresh and metrics.is_file() and metrics.stat().st_mtime > (run_dir / MANIFEST).stat().st_mtime:
        say(f"reusing the evaluation in {metrics} (newer than the run; --fresh re-evaluates)")
        return json.loads(metrics.read_text())
    return evaluate_run(run_dir, progress=lambda text: say(f"  {text}"), **options)


def compare_or_reuse(run_dir: Path, reference: str, *, fresh: bool, say) -> dict:
    from ..eval.compare import compare, compare_path
    from ..run.directory import MANIFEST

    path = compare_path(run_dir, reference)
    newest = max((Path(p) / MANIFEST).stat().st_mtime for p in (run_dir, reference) if p != "base")
    if not fresh and path.is_file() and path.stat().st_mtime > newest:
        say(f"reusing {path}")
        return json.loads(path.read_text())
    return compare(run_dir, reference)

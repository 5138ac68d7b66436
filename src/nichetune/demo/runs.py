"""Train and evaluate for the demo, reusing a finished run of the identical recipe (``--fresh`` redoes it)."""

from __future__ import annotations

import json
from pathlib import Path

from ..run import RunManifest, RunPaths, read_manifest


def train_or_reuse(recipe, *, fresh: bool, say) -> RunManifest:
    """The run's manifest: reused when ``output_dir`` holds a finished run of exactly this recipe."""
    from .. import train_recipe as train
    from ..run.directory import same_recipe

    paths = RunPaths(recipe.output_dir)
    if not fresh and paths.finished and same_recipe(paths.root, recipe):
        say(f"reusing the finished run in {paths.root} (same recipe; --fresh retrains)")
        return read_manifest(paths.manifest)
    return train(recipe, fresh=paths.finished or fresh)


def evaluate_or_reuse(run_dir: Path, *, fresh: bool, say, **options) -> dict:
    """``eval/metrics.json``, reused when it is newer than the run's weights, else ``evaluate_run(**options)``."""
    from ..eval.run import evaluate_run
    from ..run.evaluation import read_eval_metrics

    paths = RunPaths(run_dir)
    metrics = paths.eval_metrics
    if not fresh and metrics.is_file() and metrics.stat().st_mtime > paths.manifest.stat().st_mtime:
        say(f"reusing the evaluation in {metrics} (newer than the run; --fresh re-evaluates)")
        return read_eval_metrics(metrics)
    return evaluate_run(run_dir, progress=lambda text: say(f"  {text}"), **options)


def compare_or_reuse(run_dir: Path, reference: str, *, fresh: bool, say) -> dict:
    from ..eval.compare import compare, compare_path

    path = compare_path(run_dir, reference)
    newest = max(RunPaths(p).manifest.stat().st_mtime for p in (run_dir, reference) if p != "base")
    if not fresh and path.is_file() and path.stat().st_mtime > newest:
        say(f"reusing {path}")
        return json.loads(path.read_text())
    return compare(run_dir, reference)

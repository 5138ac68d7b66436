"""``nichetune eval`` and ``nichetune report``: evaluate a run and write ``eval/metrics.json`` + ``report.html``."""

from __future__ import annotations

import json
import time
from pathlib import Path

from ..atomic import atomic_write_text
from ..errors import NichetuneError
from ..run.evaluation import read_eval_metrics, write_eval_metrics
from ..run.paths import RunPaths
from ..tasks import task_spec


def _rows(run_dir: Path, data: str | None, task: str) -> tuple[list[dict], str]:
    paths = RunPaths(run_dir)
    if data is None:
        path = paths.split("test")
        if not path.is_file():
            raise NichetuneError(f"{run_dir} has no test split", hint="pass --data FILE with labelled rows")
        from ..data.readers import read_json_lines

        return read_json_lines(path), str(path)
    from ..data.rows import load_rows

    loaded = load_rows(data, task=task, quarantine=paths.eval_quarantine)
    if loaded.report.quarantined:
        print(f"{loaded.report.quarantined} rows of {data} quarantined in {paths.eval_quarantine}")
    return loaded.rows, str(data)


def evaluate_run(run_dir: str | Path, data: str | None = None, *, alpha: float | None = None,
                 target_accuracy: float | None = None,
                 slice_fields: list[str] | None = None, min_count: int = 20, zero_shot: bool = True,
                 shots_per_label: int = 1, prompt_model: str | None = None, samples: int = 20,
                 glossary: list[str] | None = None, forbidden: list[str] | None = None, latency: bool = True,
                 latency_requests: int = 20, audit: bool = True, general_rows: int = 40, progress=print) -> dict:
    """Evaluate a finished run on its test split (or ``data``); write metrics and the report.

    ``alpha`` and ``target_accuracy`` default to the recipe's ``eval`` section; a recipe with
    ``eval.review: N`` also gets ``eval/review.csv`` with N items for expert review.
    """
    from ..run.loading import read_run

    run_dir = Path(run_dir)
    manifest, recipe = read_run(run_dir)
    alpha = recipe.eval.alpha if alpha is None else alpha
    target_accuracy = recipe.eval.target_accuracy if target_accuracy is None else target_accuracy
    rows, source = _rows(run_dir, data, recipe.task)
    started = time.perf_counter()

    def step(what: str) -> None:
        if progress:
            progress(f"[{time.perf_counter() - started:6.1f}s] {what}")

    step(f"scoring {len(rows)} rows")
    spec = task_spec(recipe.task)
    if spec.labelled:
        from .classify_run import evaluate_classification

        metrics = evaluate_classification(run_dir, rows, alpha=alpha, target_accuracy=target_accuracy,
                                          slice_fields=slice_fields, min_count=min_count, zero_shot=zero_shot,
                                          shots_per_label=shots_per_label, prompt_model=prompt_model)
    else:
        from .generate_run import evaluate_generation

        metrics = evaluate_generation(run_dir, rows, samples=samples, glossary=glossary, forbidden=forbidden,
                                      general_rows=general_rows)
    metrics["data"] = source
    if latency:
        from .latency import measure_variants

        sample = rows[: spec.eval_sample]
        metrics["latency"] = measure_variants(run_dir, sample, requests=latency_requests,
                                              progress=lambda v: step(f"latency and footprint: {v}"))
        metrics["deploy"] = recipe.deploy.model_dump()
    if audit:
        step("auditing the run's splits")
        metrics["audit"] = audit_summary(run_dir, recipe)
    step("writing the report")
    predictions = metrics.pop("predictions", metrics.get("side_by_side", []))
    paths = RunPaths(run_dir)
    write_eval_metrics(paths.eval_metrics, metrics)
    atomic_write_text(paths.predictions, "".join(json.dumps(p) + "\n" for p in predictions))
    render_report(run_dir)
    if recipe.eval.review:
        from .review import export_review

        step(f"expert review sample: {export_review(run_dir, n=recipe.eval.review)}")
    return metrics


def audit_summary(run_dir: Path, recipe) -> dict:
    """The data audit of the exact splits the run used, reduced to what the report shows."""
    from ..data.audit import audit_dataset

    paths = RunPaths(run_dir)
    others = [paths.split(name) for name in ("validation", "test") if paths.split(name).is_file()]
    report = audit_dataset(paths.split("train"), tests=others, task=recipe.task)
    dup, pii = report["duplicates"], report["pii"]
    return {"warnings": report["warnings"], "train_rows": report["overview"].get("rows"),
            "splits": report["splits"], "overview": report["overview"],
            "duplicates": {k: dup[k] for k in ("exact_clusters", "near_clusters", "redundant_rows")},
            "leakage": {name: {k: (len(v) if isinstance(v, list | dict) else v) for k, v in leak.items()}
                        for name, leak in report["leakage"].items()},
            "pii": {"rows_with_pii": pii["rows_with_pii"], "by_type": pii["by_type"]}}


def render_report(run_dir: str | Path) -> Path:
    """(Re-)render ``report.html`` from ``eval/metrics.json`` and the run's own files."""
    from ..run.loading import read_run
    from .report import render

    paths = RunPaths(run_dir)
    if not paths.eval_metrics.is_file():
        raise NichetuneError(f"{paths.root} has not been evaluated", hint=f"run `nichetune eval {paths.root}` first")
    manifest, _ = read_run(paths.root)
    html = render(paths.root, read_eval_metrics(paths.eval_metrics), manifest)
    atomic_write_text(paths.report, html)
    return paths.report

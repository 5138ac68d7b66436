"""``nichetune eval`` and ``nichetune report``: evaluate a run and write ``eval/metrics.json`` + ``report.html``."""

from __future__ import annotations

import json
from pathlib import Path

from ..atomic import atomic_write_text
from ..errors import NichetuneError

METRICS = Path("eval") / "metrics.json"
REPORT = "report.html"


def _rows(run_dir: Path, data: str | None, task: str) -> tuple[list[dict], str]:
    if data is None:
        path = run_dir / "data" / "test.jsonl"
        if not path.is_file():
            raise NichetuneError(f"{run_dir} has no test split", hint="pass --data FILE with labelled rows")
        from .classify_run import read_jsonl

        return read_jsonl(path), str(path)
    from ..data.rows import load_rows

    loaded = load_rows(data, task=task, quarantine=run_dir / "eval" / "quarantine.jsonl")
    if loaded.report.quarantined:
        print(f"{loaded.report.quarantined} rows of {data} quarantined in {run_dir / 'eval' / 'quarantine.jsonl'}")
    return loaded.rows, str(data)


def evaluate_run(run_dir: str | Path, data: str | None = None, *, alpha: float = 0.1, target_accuracy: float = 0.9,
                 slice_fields: list[str] | None = None, min_count: int = 20, zero_shot: bool = True,
                 samples: int = 20, glossary: list[str] | None = None, forbidden: list[str] | None = None) -> dict:
    """Evaluate a finished run on its test split (or ``data``); write metrics and the report."""
    from ..train.run_dir import read_run

    run_dir = Path(run_dir)
    manifest, recipe = read_run(run_dir)
    rows, source = _rows(run_dir, data, recipe.task)
    if recipe.task == "classification":
        from .classify_run import evaluate_classification

        metrics = evaluate_classification(run_dir, rows, alpha=alpha, target_accuracy=target_accuracy,
                                          slice_fields=slice_fields, min_count=min_count, zero_shot=zero_shot)
    else:
        from .generate_run import evaluate_generation

        metrics = evaluate_generation(run_dir, rows, samples=samples, glossary=glossary, forbidden=forbidden)
    metrics["data"] = source
    predictions = metrics.pop("predictions", metrics.get("side_by_side", []))
    atomic_write_text(run_dir / METRICS, json.dumps(metrics, indent=1) + "\n")
    atomic_write_text(run_dir / "eval" / "predictions.jsonl", "".join(json.dumps(p) + "\n" for p in predictions))
    render_report(run_dir)
    return metrics


def render_report(run_dir: str | Path) -> Path:
    """(Re-)render ``report.html`` from ``eval/metrics.json`` and the run's own files."""
    from ..train.run_dir import read_run
    from .report import render_classification, render_generation

    run_dir = Path(run_dir)
    if not (run_dir / METRICS).is_file():
        raise NichetuneError(f"{run_dir} has not been evaluated", hint=f"run `nichetune eval {run_dir}` first")
    manifest, _ = read_run(run_dir)
    metrics = json.loads((run_dir / METRICS).read_text())
    render = render_classification if metrics["task"] == "classification" else render_generation
    html = render(run_dir, metrics, manifest)
    atomic_write_text(run_dir / REPORT, html)
    return run_dir / REPORT

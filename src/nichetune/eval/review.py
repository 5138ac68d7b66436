"""Human review: a stratified sample for domain experts as CSV, and their grades read back.

``export`` samples evaluated predictions stratified by slice and confidence band (low / mid /
high), so the experts see the uncertain cases and every group, not only the easy majority. The
CSV has one empty ``grade_N`` column per grader: 1 when the output is acceptable, 0 when not
(``yes``/``no``, ``correct``/``incorrect``, ``true``/``false`` also read). ``import`` checks every
cell, then writes ``eval/review.json``: each grader's accuracy with a Wilson interval, and
inter-rater agreement (Cohen's kappa for two graders, Fleiss' kappa for more, Krippendorff's alpha).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_text
from ..data.readers import require_input
from ..errors import DataValidationError, NichetuneError
from ..run.paths import RunPaths
from ..tasks import task_spec

YES = {"1", "yes", "y", "correct", "true", "ok", "acceptable"}
NO = {"0", "no", "n", "incorrect", "false", "wrong", "unacceptable"}
BANDS = ("low", "mid", "high")


def _predictions(run_dir: Path) -> tuple[list[dict], dict]:
    path = RunPaths(run_dir).predictions
    metrics_path = RunPaths(run_dir).eval_metrics
    if not path.is_file() or not metrics_path.is_file():
        raise NichetuneError(f"{run_dir} has not been evaluated", hint=f"run `nichetune eval {run_dir}` first")
    from ..data.readers import read_json_lines

    return read_json_lines(path), json.loads(metrics_path.read_text())


def allocate(sizes: dict, n: int) -> dict:
    """Split ``n`` over strata in proportion to their sizes (largest remainder), at least one each while n lasts."""
    total = sum(sizes.values())
    n = min(n, total)
    if n == 0:
        return {k: 0 for k in sizes}
    quota = {k: n * v / total for k, v in sizes.items()}
    out = {k: min(sizes[k], max(1, math.floor(q))) for k, q in quota.items()}
    while sum(out.values()) > n:  # more strata than n: drop the smallest
        k = min((k for k in out if out[k]), key=lambda k: (quota[k], str(k)))
        out[k] -= 1
    while sum(out.values()) < n:
        k = max((k for k in out if out[k] < sizes[k]), key=lambda k: (quota[k] - out[k], str(k)))
        out[k] += 1
    return out


def confidence_bands(confidence: np.ndarray) -> list[str]:
    """Terciles of confidence: low / mid / high."""
    if len(confidence) == 0:
        return []
    cuts = np.quantile(confidence, [1 / 3, 2 / 3])
    return [BANDS[int(np.searchsorted(cuts, c, side="right"))] for c in confidence]


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection); a leading
# apostrophe makes it text. The apostrophe itself is escaped too, so restore_cell is exact.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "'")


def neutralise_cell(value) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def restore_cell(text: str) -> str:
    """The exact value ``neutralise_cell`` was given."""
    return text[1:] if text.startswith("'") else text


def export_review(run_dir: str | Path, *, n: int = 100, graders: int = 2, out: str | Path | None = None,
                  slice_field: str | None = None, seed: int = 0) -> Path:
    """Write a stratified sample of the run's evaluated outputs as CSV with empty grade columns."""
    run_dir = Path(run_dir)
    preds, metrics = _predictions(run_dir)
    classification = task_spec(metrics["task"]).labelled
    if classification:
        field = slice_field or next((f for f in metrics.get("slices", {}) if f != "length"), None)
        bands = confidence_bands(np.array([p["confidence"] for p in preds]))
        strata = [(str(p.get("slices", {}).get(field, "")) if field else "", b) for p, b in zip(preds, bands,
                                                                                              strict=True)]
    else:
        field, strata = None, [("", "")] * len(preds)
    groups: dict = defaultdict(list)
    for i, s in enumerate(strata):
        groups[s].append(i)
    rng = np.random.default_rng(seed)
    quota = allocate({k: len(v) for k, v in groups.items()}, n)
    picked = sorted(int(i) for k, idx in groups.items() for i in rng.choice(idx, size=quota[k], replace=False))
    grade_cols = [f"grade_{g + 1}" for g in range(graders)]
    buf = io.StringIO()
    writer = csv.writer(buf)

    def write(*cells) -> None:  # every cell neutralised: no text from the data runs in a spreadsheet
        writer.writerow([neutralise_cell(c) for c in cells])

    if classification:
        write("review_id", "run", "id", "slice", "confidence_band", "confidence", "text", "predicted",
              "reference_label", *grade_cols, "notes")
        for k, i in enumerate(picked):
            p = preds[i]
            write(k + 1, str(run_dir), p.get("id"), strata[i][0], strata[i][1], f"{p['confidence']:.4f}",
                  p.get("text", ""), p["predicted"], p["label"], *[""] * graders, "")
    else:
        write("review_id", "run", "id", "prompt", "reference_answer", "answer", *grade_cols, "notes")
        for k, i in enumerate(picked):
            p = preds[i]
            write(k + 1, str(run_dir), p.get("id"), p["prompt"], p["reference"], p["tuned"], *[""] * graders, "")
    path = Path(out) if out else RunPaths(run_dir).review_sheet
    atomic_write_text(path, buf.getvalue())
    if len(picked) < n:
        print(f"only {len(picked)} evaluated outputs exist; all of them are in the sample"
              + ("" if classification else " (nichetune eval --samples N answers more prompts)"))
    return path


def _grade(value: str, path: Path, line: int, column: str) -> int | None:
    v = value.strip().lower()
    if v == "":
        return None
    if v in YES:
        return 1
    if v in NO:
        return 0
    raise DataValidationError(f"{path}, line {line}, field {column}: grade {value!r} is neither yes nor no",
                              hint="write 1 (acceptable) or 0 (not acceptable), or leave it empty")


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval for a proportion."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def import_review(path: str | Path, run_dir: str | Path | None = None) -> dict:
    """Read graded CSV back; write ``RUN/eval/review.json`` and re-render the run's report."""
    from ..data.audit.agreement import agreement_section

    path = Path(path)
    if not path.exists():
        raise NichetuneError(f"{path}: no such file", hint="nichetune review export RUN_DIR writes one")
    require_input(path)
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = reader.fieldnames or []
        grade_cols = [c for c in columns if c.startswith("grade_")]
        if not grade_cols:
            raise DataValidationError(f"{path}, line 1: no grade_N columns", hint="grade the CSV that "
                                      "`nichetune review export` wrote, keeping its header")
        items = []
        for line, raw in enumerate(reader, start=2):
            row = {k: restore_cell(v or "") for k, v in raw.items() if k is not None}
            grades = {c: _grade(row.get(c) or "", path, line, c) for c in grade_cols}
            items.append({"id": row.get("id") or row.get("review_id"), "run": row.get("run"), **grades,
                          "automatic": (row["predicted"] == row["reference_label"]) if "predicted" in row else None})
    runs = {i["run"] for i in items if i["run"]}
    run_dir = Path(run_dir) if run_dir else (Path(runs.pop()) if len(runs) == 1 else None)
    if run_dir is None:
        raise NichetuneError(f"{path} does not name exactly one run", hint="pass --run RUN_DIR")
    graders = {}
    for c in grade_cols:
        graded = [i[c] for i in items if i[c] is not None]
        lo, hi = wilson(sum(graded), len(graded))
        graders[c] = {"graded": len(graded), "accepted": sum(graded),
                      "accuracy": sum(graded) / len(graded) if graded else float("nan"), "ci_low": lo, "ci_high": hi}
    if not any(g["graded"] for g in graders.values()):
        raise DataValidationError(f"{path}: no item has a grade yet", hint="fill the grade_N columns with 1 or 0")
    auto = [i["automatic"] for i in items if i["automatic"] is not None]
    result = {"file": str(path), "items": len(items), "graders": graders,
              "agreement": agreement_section(items, grade_cols),
              "automatic_accuracy": sum(auto) / len(auto) if auto else None}
    atomic_write_text(RunPaths(run_dir).review, json.dumps(result, indent=1) + "\n")
    from .run import render_report

    render_report(run_dir)
    return result

"""``RUN/metrics.jsonl``: one JSON line per logged step and per evaluation (training appends it)."""

from __future__ import annotations

import json
from pathlib import Path

from ..data.readers import read_json_lines
from .paths import RunPaths


def truncate_after(path: Path, step: int) -> None:
    """On resume, drop lines logged after the checkpoint being resumed (they will be logged again)."""
    if not path.is_file():
        return
    kept = [row for row in read_json_lines(path) if row["step"] <= step]
    # in place, not replaced: the run's Tracker already holds this file open for appending
    path.write_text("".join(json.dumps(row) + "\n" for row in kept))


def read_metrics(run_dir: str | Path) -> list[dict]:
    path = RunPaths(run_dir).metrics
    return read_json_lines(path) if path.is_file() else []

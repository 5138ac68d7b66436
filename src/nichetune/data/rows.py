"""Load a data file into normalised rows (bad rows quarantined), and write rows atomically."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_open
from ..errors import DataValidationError
from .readers import read_records
from .records import Quarantine
from .schema import FieldMap
from .validate import ValidationReport, iter_checked, tally


@dataclass
class LoadedRows:
    path: Path
    task: str
    rows: list[dict]
    report: ValidationReport


def detect_task(path: str | Path, fields: FieldMap | None = None) -> str:
    """Guess the task from the first readable row: chat shapes -> sft, a label -> classification."""
    f = fields or FieldMap()
    for record in read_records(path):
        if record.value is None:
            continue
        keys = set(record.value)
        if keys & {f.messages, "conversations", "instruction", f.prompt}:
            return "sft"
        return "classification" if f.label in keys else "completion"
    raise DataValidationError(f"{path}: no readable rows to detect the task from", hint="pass --task")


def load_rows(path: str | Path, *, task: str | None = None, fields: FieldMap | None = None,
              quarantine: str | Path | None = None, labels: set[str] | None = None) -> LoadedRows:
    """Read and validate ``path``; every row gets an ``id`` (its own, or ``L<line>``)."""
    task = task or detect_task(path, fields)
    report = ValidationReport(source=str(path), task=task, quarantine_path=str(quarantine) if quarantine else None)
    rows: list[dict] = []
    with Quarantine(quarantine) as bad:
        for record, row in tally(iter_checked(path, task=task, fields=fields, labels=labels), report, bad):
            row["id"] = str(row["id"]) if row.get("id") not in (None, "") else (
                f"L{record.location.line}" if record.location.line else Path(record.location.source).name)
            rows.append(row)
    return LoadedRows(Path(path), task, rows, report)


def row_text(row: dict) -> str:
    """The text to analyse: ``text``, or the contents of a conversation joined by newlines."""
    if "text" in row:
        return row["text"]
    return "\n".join(m["content"] for m in row.get("messages", []))


def write_rows(path: str | Path, rows: Iterable[dict]) -> int:
    n = 0
    with atomic_open(path, "w") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n

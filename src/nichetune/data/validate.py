"""Validate a data file against a task: every bad row is quarantined with its reason and location."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..atomic import atomic_open
from ..errors import DataValidationError
from .readers import DEFAULT_MAX_LINE_BYTES, read_records
from .records import Quarantine, RawRecord
from .schema import FieldMap, normalise, row_schema


@dataclass
class ValidationReport:
    """What validation found; ``valid + quarantined == total`` always holds."""

    source: str
    task: str
    total: int = 0
    valid: int = 0
    quarantined: int = 0
    blank_lines: int = 0
    reasons: Counter = field(default_factory=Counter)
    labels: Counter = field(default_factory=Counter)
    quarantine_path: str | None = None
    output_path: str | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["reasons"] = dict(self.reasons.most_common())
        data["labels"] = dict(self.labels.most_common())
        return data


def _check(task: str, fields: FieldMap | None) -> FieldMap:
    row_schema(task)  # refuses an unknown task
    return fields or FieldMap()


def iter_checked(
    path: str | Path, *, task: str, fields: FieldMap | None = None, labels: set[str] | None = None,
    format: str | None = None, encoding: str = "utf-8", max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[tuple[RawRecord, dict | None]]:
    """Yield ``(record, normalised row or None)``; a None row means ``record.issue`` says why."""
    fields = _check(task, fields)
    frozen = frozenset(labels) if labels else None
    for record in read_records(path, format=format, encoding=encoding, max_line_bytes=max_line_bytes):
        if record.blank or record.issue is not None:
            yield record, None
            continue
        row, issue = normalise(record.value, task, fields, frozen,
                               from_strings=bool(record.meta.get("all_strings")))
        record.issue = issue
        yield record, row


def tally(records: Iterator[tuple[RawRecord, dict | None]], report: ValidationReport, bad: Quarantine, *,
          strict: bool = False) -> Iterator[tuple[RawRecord, dict]]:
    """Count every record into ``report``, quarantine the bad ones, and yield the valid ones.

    Raises:
        DataValidationError: in ``strict`` mode, at the first bad row (naming file, line, field).
    """
    labelled = row_schema(report.task).labelled
    for record, row in records:
        if record.blank:
            report.blank_lines += 1
            continue
        report.total += 1
        if row is None:
            issue = record.issue
            if strict:
                where = f" field {issue.field!r}:" if issue.field else ""
                raise DataValidationError(
                    f"{record.location}:{where} {issue.reason}: {issue.message}",
                    hint="fix the row, or run without --strict to quarantine bad rows and continue",
                )
            bad.add(record, issue)
            report.quarantined += 1
            report.reasons[issue.reason] += 1
            continue
        report.valid += 1
        if labelled:
            report.labels[row["label"]] += 1
        yield record, row


def validate_file(
    path: str | Path,
    *,
    task: str,
    fields: FieldMap | None = None,
    labels: set[str] | None = None,
    format: str | None = None,
    encoding: str = "utf-8",
    quarantine: str | Path | None = None,
    out: str | Path | None = None,
    strict: bool = False,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> ValidationReport:
    """Read ``path`` for ``task``; write valid rows (normalised) to ``out`` and bad ones to ``quarantine``.

    Both outputs are written atomically. Nothing is dropped silently: each bad row is in the
    quarantine file with reason, field, file, line and byte offset; blank lines are counted.

    Raises:
        DataValidationError: in ``strict`` mode, at the first bad row (naming file, line, field).

    Example:
        >>> report = validate_file("reviews.csv", task="classification", quarantine="bad.jsonl")  # doctest: +SKIP
        >>> report.valid, report.quarantined  # doctest: +SKIP
    """
    report = ValidationReport(source=str(path), task=task,
                              quarantine_path=str(quarantine) if quarantine else None,
                              output_path=str(out) if out else None)
    records = iter_checked(path, task=task, fields=fields, labels=labels, format=format, encoding=encoding,
                           max_line_bytes=max_line_bytes)
    with (atomic_open(out, "w") if out else nullcontext()) as out_fh, \
            Quarantine(None if strict else quarantine) as bad:
        for _, row in tally(records, report, bad, strict=strict):
            if out_fh is not None:
                out_fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return report

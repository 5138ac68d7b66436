"""CSV and TSV with a header row; quoted fields may span lines."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from pathlib import Path

from ...errors import DataValidationError
from ..records import Issue, Location, RawRecord
from .lines import Line, iter_lines

csv.field_size_limit(sys.maxsize)


def _read_delimited(path: Path, delimiter: str, encoding: str, max_line_bytes: int) -> Iterator[RawRecord]:
    source = str(path)
    lines: list[Line] = []  # physical lines of the record being parsed

    def texts() -> Iterator[str]:
        for line in iter_lines(path, encoding, max_line_bytes, keepends=True):
            lines.append(line)
            # an undecodable or over-long line still feeds the parser (as a placeholder) so the
            # record it belongs to is found and quarantined whole
            yield line.text if line.text is not None else "\n"

    stream = texts()
    reader = csv.reader(stream, delimiter=delimiter, strict=True)
    try:
        header = next(reader)
    except StopIteration:
        return
    except csv.Error as exc:
        raise DataValidationError(f"{source}, line 1: unreadable header: {exc}") from None
    bad_first = next((ln for ln in lines if ln.issue), None)
    if bad_first is not None:
        raise DataValidationError(f"{source}, line 1: header: {bad_first.issue.message}")
    names = [h.strip().lstrip("\ufeff") for h in header]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes or "" in names:
        problem = f"duplicate columns {dupes}" if dupes else "an empty column name"
        raise DataValidationError(
            f"{source}, line 1: the header has {problem}",
            hint="give every column a unique, non-empty name",
        )
    lines.clear()
    while True:
        try:
            row = next(reader)
            error = None
        except StopIteration:
            return
        except csv.Error as exc:
            row, error = None, exc
        span, lines[:] = list(lines), []
        if not span:
            return
        first = span[0]
        loc = Location(source, first.number, first.offset)
        raw = b"".join(ln.raw for ln in span)
        bad = next((ln for ln in span if ln.issue), None)
        if bad is not None:
            yield RawRecord(loc, None, raw, bad.issue, raw_truncated=bad.too_long)
        elif error is not None:
            yield RawRecord(loc, None, raw, Issue("invalid_csv", f"unparseable row: {error}"))
        elif not row or (len(row) == 1 and not row[0].strip() and len(names) > 1):
            yield RawRecord(loc, None, raw, blank=True)
        elif len(row) != len(names):
            yield RawRecord(loc, None, raw, Issue(
                "invalid_csv", f"expected {len(names)} columns, got {len(row)}"))
        else:
            yield RawRecord(loc, dict(zip(names, row, strict=True)), raw, meta={"all_strings": True})


def read_csv(path: Path, *, encoding: str, max_line_bytes: int) -> Iterator[RawRecord]:
    return _read_delimited(path, ",", encoding, max_line_bytes)


def read_tsv(path: Path, *, encoding: str, max_line_bytes: int) -> Iterator[RawRecord]:
    return _read_delimited(path, "\t", encoding, max_line_bytes)

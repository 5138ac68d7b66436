"""Streaming readers: each yields ``RawRecord``s with exact locations and never raises on bad rows."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

from ...errors import DataValidationError
from ..records import RawRecord
from .csv_reader import read_csv, read_tsv
from .json_array import read_json_array
from .jsonl import read_json_lines, read_jsonl
from .lines import DEFAULT_MAX_LINE_BYTES
from .parquet import read_parquet
from .textdir import read_text_folder

__all__ = ["DEFAULT_MAX_LINE_BYTES", "READERS", "detect_format", "read_json_lines", "read_records"]

READERS: dict[str, Callable[..., Iterator[RawRecord]]] = {
    "jsonl": read_jsonl,
    "json": read_json_array,
    "csv": read_csv,
    "tsv": read_tsv,
    "parquet": read_parquet,
    "textdir": read_text_folder,
}
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "tsv",
             ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet"}


def detect_format(path: str | Path) -> str:
    """Pick a reader from the path: a folder is ``textdir``, otherwise the file suffix decides."""
    path = Path(path)
    if path.is_dir():
        return "textdir"
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise DataValidationError(
            f"{path}: cannot tell the format from the suffix {path.suffix!r}",
            hint=f"rename the file or pass --format one of {', '.join(READERS)}",
        )
    return fmt


def read_records(
    path: str | Path,
    *,
    format: str | None = None,
    encoding: str = "utf-8",
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[RawRecord]:
    """Stream the records of ``path`` with bounded memory.

    Bad rows come back as ``RawRecord``s carrying an ``Issue``; nothing is skipped silently
    (blank lines come back with ``blank=True`` so callers can count them).

    Raises:
        DataValidationError: the file is missing or its format is unknown.
    """
    path = Path(path)
    if not path.exists():
        raise DataValidationError(f"{path}: no such file or folder")
    fmt = format or detect_format(path)
    if fmt not in READERS:
        raise DataValidationError(f"unknown format {fmt!r}", hint=f"use one of {', '.join(READERS)}")
    return READERS[fmt](path, encoding=encoding, max_line_bytes=max_line_bytes)

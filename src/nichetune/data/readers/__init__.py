"""Streaming readers: each yields ``RawRecord``s with exact locations and never raises on bad rows."""

from __future__ import annotations

import stat
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

__all__ = ["DEFAULT_MAX_LINE_BYTES", "READERS", "detect_format", "read_json_lines", "read_records", "require_input"]

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
    path = require_input(path, folder_ok=format in (None, "textdir"))  # a folder only where textdir may read it
    fmt = format or detect_format(path)
    if fmt not in READERS:
        raise DataValidationError(f"unknown format {fmt!r}", hint=f"use one of {', '.join(READERS)}")
    if fmt != "textdir":
        _refuse_compressed(path, fmt)
    return READERS[fmt](path, encoding=encoding, max_line_bytes=max_line_bytes)


# magic numbers of compressed containers a text reader would misread as bad UTF-8
_COMPRESSED = {b"\x1f\x8b": ("gzip", "gunzip -k"), b"BZh": ("bzip2", "bunzip2 -k"), b"\xfd7zXZ\x00": ("xz", "unxz -k"),
               b"\x28\xb5\x2f\xfd": ("zstd", "unzstd"), b"PK\x03\x04": ("zip", "unzip")}


def _refuse_compressed(path: Path, fmt: str) -> None:
    if fmt == "parquet":  # Parquet compresses inside its own format
        return
    with open(path, "rb") as fh:
        head = fh.read(6)
    for magic, (kind, tool) in _COMPRESSED.items():
        if head.startswith(magic):
            raise DataValidationError(f"{path}: the file is {kind}-compressed, not plain {fmt} text",
                                      hint=f"decompress it first ({tool} {path}) and read the result")


def require_input(path: str | Path, *, folder_ok: bool = False) -> Path:
    """``path`` if it is a readable regular file (or, with ``folder_ok``, a folder).

    A FIFO, socket or device would block or never end, so it is refused before anything opens it.

    Raises:
        DataValidationError: missing, not a regular file, or not readable (naming the path and why).
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise DataValidationError(f"{path}: no such file or folder") from None
    except OSError as exc:
        raise DataValidationError(f"{path}: cannot be read ({exc.strerror})") from None
    if folder_ok and stat.S_ISDIR(mode):
        return path
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO (named pipe)" if stat.S_ISFIFO(mode) else \
            "a socket or device"
        raise DataValidationError(f"{path} is {kind}, not a regular file",
                                  hint="give a data file; to read from a pipe, save its output to a file first")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise DataValidationError(f"{path}: cannot be read ({exc.strerror})",
                                  hint="check the file's permissions (ls -l) and that its disk is mounted") from None
    return path

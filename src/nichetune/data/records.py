"""Where a record came from, what is wrong with it, and the quarantine file that keeps it."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..atomic import atomic_open

# Reason codes written to quarantine files (a stable, documented vocabulary).
REASONS = {
    "invalid_utf8": "bytes that are not valid in the file's encoding",
    "invalid_json": "the text is not valid JSON (duplicate keys included: which value is meant is ambiguous)",
    "invalid_unicode": "a string holding half of a UTF-16 surrogate pair, which is not a Unicode character",
    "corrupt_data": "rows the format's reader cannot decode (a damaged Parquet row group), kept as their location",
    "not_an_object": "a JSON value that is not an object",
    "invalid_csv": "a CSV/TSV row that cannot be parsed or has the wrong number of columns",
    "line_too_long": "a line (or JSON element, or file) over the size limit",
    "missing_field": "a required field is absent",
    "empty_field": "a required field is empty or whitespace",
    "wrong_type": "a field has the wrong type",
    "invalid_value": "a field has a value outside its allowed range",
    "control_characters": "NUL or other control characters inside text",
    "unknown_label": "a label outside the declared label set",
    "invalid_messages": "a chat conversation that cannot be used for training",
    "unsupported_file": "a file that the folder reader cannot use",
}
RAW_KEEP_BYTES = 1 << 16  # over-long rows keep this much raw text plus their exact location


@dataclass(frozen=True)
class Location:
    """Where a record starts: file, 1-based line (or row), and byte offset when known."""

    source: str
    line: int | None = None
    byte_offset: int | None = None

    def __str__(self) -> str:
        parts = [self.source]
        if self.line is not None:
            parts.append(f"line {self.line}")
        if self.byte_offset is not None:
            parts.append(f"byte {self.byte_offset}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Issue:
    reason: str
    message: str
    field: str | None = None

    def __post_init__(self) -> None:
        assert self.reason in REASONS, self.reason


@dataclass
class RawRecord:
    """One record as a reader produced it: a value, or the issue that stopped it being read."""

    location: Location
    value: dict[str, Any] | None
    raw: bytes | str | None = None
    issue: Issue | None = None
    raw_truncated: bool = False
    blank: bool = False
    meta: dict[str, Any] = field(default_factory=dict)


def _raw_fields(raw: bytes | str | None, truncated: bool) -> dict[str, Any]:
    if raw is None:
        return {}
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            return {"raw_base64": base64.b64encode(raw).decode("ascii"), "raw_truncated": truncated}
    return {"raw": raw, "raw_truncated": truncated}


class Quarantine:
    """Collects bad records and writes them as JSONL, atomically, with reason and location."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path else None
        self.count = 0
        self._cm = None
        self._fh = None

    def __enter__(self) -> Quarantine:
        if self.path is not None:
            self._cm = atomic_open(self.path, "w")
            self._fh = self._cm.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._cm is not None:
            self._cm.__exit__(*exc)

    def add(self, record: RawRecord, issue: Issue) -> None:
        self.count += 1
        if self._fh is None:
            return
        entry = {
            "source": record.location.source,
            "line": record.location.line,
            "byte_offset": record.location.byte_offset,
            "reason": issue.reason,
            "field": issue.field,
            "message": issue.message,
            **_raw_fields(record.raw, record.raw_truncated),
        }
        self._fh.write(json.dumps(entry, ensure_ascii=False) + "\n")

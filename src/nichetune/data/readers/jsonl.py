"""JSON Lines: one object per line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from ..records import Issue, Location, RawRecord
from .lines import iter_lines


def _reject_constant(name: str):
    raise ValueError(f"non-standard JSON constant {name}")


def parse_json_object(text: str) -> tuple[dict | None, Issue | None]:
    """Parse ``text`` as a JSON object; NaN/Infinity are rejected (not valid JSON)."""
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        return None, Issue("invalid_json", f"invalid JSON: {exc.msg} at column {exc.colno}")
    except (ValueError, RecursionError) as exc:
        return None, Issue("invalid_json", f"invalid JSON: {exc}")
    if not isinstance(value, dict):
        return None, Issue("not_an_object", f"expected a JSON object, got {type(value).__name__}")
    return value, None


def read_jsonl(path: Path, *, encoding: str, max_line_bytes: int) -> Iterator[RawRecord]:
    source = str(path)
    for line in iter_lines(path, encoding, max_line_bytes):
        loc = Location(source, line.number, line.offset)
        if line.issue is not None:
            yield RawRecord(loc, None, line.raw, line.issue, raw_truncated=line.too_long)
            continue
        if not line.text.strip():
            yield RawRecord(loc, None, line.text, blank=True)
            continue
        value, issue = parse_json_object(line.text)
        yield RawRecord(loc, value, line.text, issue)

"""JSON Lines: one object per line."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from ...errors import DataValidationError
from ..records import Issue, Location, RawRecord
from .lines import DEFAULT_MAX_LINE_BYTES, iter_lines

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _reject_constant(name: str):
    raise ValueError(f"non-standard JSON constant {name}")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    obj: dict = {}
    for key, value in pairs:
        if key in obj:
            raise ValueError(f"duplicate key {key!r} (which value is meant is ambiguous)")
        obj[key] = value
    return obj


def _lone_surrogate(value, path: str = "") -> str | None:
    """The field path of the first string holding half a UTF-16 pair (``"\\ud800"``), if any."""
    if isinstance(value, str):
        return path or "(value)" if _SURROGATE.search(value) else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = _lone_surrogate(item, f"{path}.{key}" if path else str(key))
        if found:
            return found
    return None


def parse_json_object(text: str) -> tuple[dict | None, Issue | None]:
    """Parse ``text`` as a JSON object.

    Refused with a reason: NaN/Infinity (not JSON), duplicate keys (ambiguous), and lone UTF-16
    surrogates such as ``"\\ud800"`` (not Unicode characters, so the row could not be written out).
    """
    try:
        value = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as exc:
        return None, Issue("invalid_json", f"invalid JSON: {exc.msg} at column {exc.colno}")
    except (ValueError, RecursionError) as exc:
        return None, Issue("invalid_json", f"invalid JSON: {exc}")
    if not isinstance(value, dict):
        return None, Issue("not_an_object", f"expected a JSON object, got {type(value).__name__}")
    if _SURROGATE_ESCAPE.search(text):
        field = _lone_surrogate(value)
        if field is not None:
            return None, Issue("invalid_unicode", "a lone UTF-16 surrogate (an escape such as \\ud800 without its "
                               "pair) is not a Unicode character", field=field.split(".")[0])
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


def read_json_lines(path: str | Path) -> list[dict]:
    """Every object of a JSONL file nichetune itself wrote (predictions, metrics logs); blank lines skip.

    The same line reader as user data, so a U+0085 or U+2028 inside a string never splits a row.

    Raises:
        DataValidationError: naming the file and line of the first row that is not a JSON object.
    """
    path = Path(path)
    rows = []
    for record in read_jsonl(path, encoding="utf-8", max_line_bytes=DEFAULT_MAX_LINE_BYTES):
        if record.blank:
            continue
        if record.issue is not None:
            raise DataValidationError(f"{record.location}: {record.issue.message}",
                                      hint="the file is damaged; re-create it with the command that wrote it")
        rows.append(record.value)
    return rows

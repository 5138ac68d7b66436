"""Physical lines of a file, with offsets, bounded length and strict decoding."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..records import RAW_KEEP_BYTES, Issue


@dataclass
class Line:
    number: int  # 1-based
    offset: int  # byte offset of the line's first byte
    raw: bytes  # without the line terminator; at most RAW_KEEP_BYTES when too long
    text: str | None  # decoded text, None when decoding failed or the line is too long
    issue: Issue | None
    too_long: bool = False


def _decode(raw: bytes, encoding: str, offset: int, number: int) -> tuple[str | None, Issue | None]:
    try:
        return raw.decode(encoding), None
    except UnicodeDecodeError as exc:
        bad = raw[exc.start : exc.start + 1].hex()
        return None, Issue(
            "invalid_utf8",
            f"invalid {encoding} at line {number}, byte offset {offset + exc.start} (0x{bad}); "
            "pass --encoding if the file is not UTF-8",
        )


def iter_lines(path: Path, encoding: str, max_line_bytes: int, *, keepends: bool = False) -> Iterator[Line]:
    """Yield each physical line; over-long lines are consumed in chunks and flagged, not loaded."""
    offset = 0
    number = 0
    with open(path, "rb") as fh:
        while True:
            chunk = fh.readline(max_line_bytes + 1)
            if not chunk:
                return
            number += 1
            start = offset
            offset += len(chunk)
            if len(chunk) > max_line_bytes and not chunk.endswith(b"\n"):
                kept = chunk[:RAW_KEEP_BYTES]
                while chunk and not chunk.endswith(b"\n"):
                    chunk = fh.readline(1 << 20)
                    offset += len(chunk)
                yield Line(number, start, kept, None, Issue(
                    "line_too_long", f"line {number} is longer than {max_line_bytes} bytes"
                ), too_long=True)
                continue
            body = chunk if keepends else chunk.rstrip(b"\r\n")
            text, issue = _decode(body, encoding, start, number)
            yield Line(number, start, body, text, issue)

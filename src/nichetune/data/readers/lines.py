"""Physical lines of a file, with offsets, bounded length and strict decoding."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..records import RAW_KEEP_BYTES, Issue

DEFAULT_MAX_LINE_BYTES = 8 << 20


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


BOM = b"\xef\xbb\xbf"


def _split_bare_cr(chunk: bytes) -> list[bytes]:
    """Old Mac files end lines with a lone CR: each becomes its own line (CRLF stays one ending)."""
    body = chunk[:-2] if chunk.endswith(b"\r\n") else chunk[:-1] if chunk.endswith(b"\n") else chunk
    if b"\r" not in body.rstrip(b"\r"):
        return [chunk]
    parts = chunk.split(b"\r")
    pieces = [part + b"\r" for part in parts[:-1]]
    if parts[-1]:
        pieces.append(parts[-1])
    if len(pieces) > 1 and pieces[-1] == b"\n":  # the CR of a final CRLF
        crlf_end = pieces.pop()
        pieces[-1] += crlf_end
    return pieces


def iter_lines(path: Path, encoding: str, max_line_bytes: int, *, keepends: bool = False) -> Iterator[Line]:
    """Yield each physical line; over-long lines are consumed in chunks and flagged, not loaded.

    Lines end at LF, CRLF or a lone CR, never at the Unicode separators (U+0085, U+2028, U+2029)
    that ``str.splitlines`` also breaks at and that JSON allows inside strings. A UTF-8 byte order
    mark at the start of the file is not part of the first line.
    """
    offset = 0
    number = 0
    pending: list[bytes] = []  # the rest of a physical line split at lone CRs
    with open(path, "rb") as fh:
        if encoding.lower().replace("-", "").replace("_", "") in ("utf8", "utf8sig"):
            if fh.read(len(BOM)) == BOM:
                offset = len(BOM)
            else:
                fh.seek(0)
        while True:
            if pending:
                chunk = pending.pop(0)
            else:
                chunk = fh.readline(max_line_bytes + 1)
                if not chunk:
                    return
                if len(chunk) <= max_line_bytes:  # an over-long line is never copied
                    pending = _split_bare_cr(chunk)
                    chunk = pending.pop(0)
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
            body = chunk if keepends else chunk.removesuffix(b"\n").removesuffix(b"\r")
            text, issue = _decode(body, encoding, start, number)
            yield Line(number, start, body, text, issue)

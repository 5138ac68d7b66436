"""A JSON array of objects, split into elements by a byte scanner so memory stays bounded."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from ..records import RAW_KEEP_BYTES, Issue, Location, RawRecord
from .jsonl import parse_json_object

_STRUCTURE = re.compile(rb'["\[\]{},]')
_IN_STRING = re.compile(rb'["\\]')
_CHUNK = 1 << 16


class _Element:
    def __init__(self, offset: int, line: int) -> None:
        self.offset, self.line = offset, line
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, data: bytes, limit: int) -> None:
        if self.size <= limit:
            self.parts.append(data)
        self.size += len(data)

    def data(self) -> bytes:
        return b"".join(self.parts)


def _decode_element(el: _Element, encoding: str, source: str, limit: int) -> RawRecord:
    loc = Location(source, el.line, el.offset)
    raw = el.data()
    if el.size > limit:
        issue = Issue("line_too_long", f"array element at line {el.line} is larger than {limit} bytes")
        return RawRecord(loc, None, raw[:RAW_KEEP_BYTES], issue, raw_truncated=True)
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        bad_line = el.line + raw[: exc.start].count(b"\n")
        issue = Issue("invalid_utf8", f"invalid {encoding} at line {bad_line}, byte offset "
                      f"{el.offset + exc.start} (0x{raw[exc.start:exc.start + 1].hex()})")
        return RawRecord(loc, None, raw, issue)
    value, issue = parse_json_object(text)
    return RawRecord(loc, value, text, issue)


def read_json_array(path: Path, *, encoding: str, max_line_bytes: int) -> Iterator[RawRecord]:
    """Yield one record per top-level array element; a malformed element does not stop the rest."""
    source = str(path)
    offset, line = 0, 1
    started = finished = False
    depth, in_string, escape = 0, False, False
    element: _Element | None = None

    def file_issue(message: str, at_line: int, at_offset: int) -> RawRecord:
        return RawRecord(Location(source, at_line, at_offset), None, None, Issue("invalid_json", message))

    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            pos = 0
            if not started:
                stripped = chunk.lstrip()
                if not stripped:
                    offset += len(chunk)
                    line += chunk.count(b"\n")
                    continue
                lead = len(chunk) - len(stripped)
                line += chunk[:lead].count(b"\n")
                if stripped[:3] == b"\xef\xbb\xbf":
                    lead += 3
                    stripped = stripped[3:]
                if not stripped.startswith(b"["):
                    yield file_issue("a .json file must hold one array of objects (use .jsonl for one "
                                     "object per line)", line, offset + lead)
                    return
                started, pos = True, lead + 1
            while pos < len(chunk):
                if finished:
                    rest = chunk[pos:]
                    if rest.strip():
                        extra = len(rest) - len(rest.lstrip())
                        yield file_issue("unexpected data after the closing ]",
                                         line + rest[:extra].count(b"\n"), offset + pos + extra)
                        return
                    line += rest.count(b"\n")
                    break
                if escape:  # the byte right after a backslash inside a string is literal
                    element.add(chunk[pos : pos + 1], max_line_bytes)
                    line += chunk[pos : pos + 1] == b"\n"
                    pos, escape = pos + 1, False
                    continue
                if in_string:  # only a quote or a backslash can change anything inside a string
                    match = _IN_STRING.search(chunk, pos)
                    end = match.start() if match else len(chunk)
                    element.add(chunk[pos:end], max_line_bytes)
                    line += chunk.count(b"\n", pos, end)
                    if match is None:
                        pos = len(chunk)
                        break
                    element.add(chunk[end : end + 1], max_line_bytes)
                    escape = chunk[end : end + 1] == b"\\"  # else it was the closing quote
                    in_string = escape
                    pos = end + 1
                    continue
                match = _STRUCTURE.search(chunk, pos)
                end = match.start() if match else len(chunk)
                segment = chunk[pos:end]
                if segment:
                    if element is not None:
                        element.add(segment, max_line_bytes)
                    elif segment.strip():
                        lead = len(segment) - len(segment.lstrip())
                        element = _Element(offset + pos + lead, line + segment[:lead].count(b"\n"))
                        element.add(segment[lead:], max_line_bytes)
                    line += segment.count(b"\n")
                if match is None:
                    pos = len(chunk)
                    break
                ch = chunk[end : end + 1]
                pos = end + 1
                if depth == 0 and ch in (b",", b"]"):
                    if element is not None:
                        yield _decode_element(element, encoding, source, max_line_bytes)
                    elif ch == b",":
                        yield file_issue(f"empty array element at line {line}", line, offset + end)
                    element = None
                    finished = ch == b"]"
                    continue
                if element is None:
                    element = _Element(offset + end, line)
                element.add(ch, max_line_bytes)
                if ch == b'"':
                    in_string = True
                elif ch in (b"[", b"{"):
                    depth += 1
                elif ch in (b"]", b"}"):
                    depth = max(depth - 1, 0)
            offset += len(chunk)
    if not started:
        yield file_issue("the file is empty; expected a JSON array", line, offset)
    elif not finished:
        if element is not None:
            rec = _decode_element(element, encoding, source, max_line_bytes)
            rec.issue = Issue("invalid_json", f"unexpected end of file inside the element that starts at "
                              f"line {element.line} (missing ] or }})")
            rec.value = None
            yield rec
        else:
            yield file_issue("unexpected end of file: the array is never closed with ]", line, offset)

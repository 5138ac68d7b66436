"""A folder with one subfolder per label, each holding one text file per example."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..records import RAW_KEEP_BYTES, Issue, Location, RawRecord

TEXT_SUFFIXES = {".txt", ".text", ".md"}


def read_text_folder(path: Path, *, encoding: str, max_line_bytes: int) -> Iterator[RawRecord]:
    """Yield ``{"id", "text", "label"}`` per file; the label is the subfolder's name."""
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path)
        if any(part.startswith(".") for part in rel.parts):
            continue  # hidden files (.DS_Store, editor swap files) are not data
        loc = Location(str(file))
        if len(rel.parts) != 2:
            yield RawRecord(loc, None, None, Issue(
                "unsupported_file", f"{rel} is not inside a label folder (expected LABEL/FILE.txt)"))
            continue
        if file.suffix.lower() not in TEXT_SUFFIXES:
            yield RawRecord(loc, None, None, Issue(
                "unsupported_file", f"{rel} is not a text file ({', '.join(sorted(TEXT_SUFFIXES))})"))
            continue
        size = file.stat().st_size
        if size > max_line_bytes:
            with open(file, "rb") as fh:
                head = fh.read(RAW_KEEP_BYTES)
            yield RawRecord(loc, None, head, Issue("line_too_long", f"{rel} is larger than {max_line_bytes} bytes"),
                            raw_truncated=True)
            continue
        data = file.read_bytes()
        try:
            text = data.decode(encoding)
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            yield RawRecord(Location(str(file), line, exc.start), None, data, Issue(
                "invalid_utf8", f"invalid {encoding} at line {line}, byte offset {exc.start} "
                f"(0x{data[exc.start:exc.start + 1].hex()}); pass --encoding if the files are not UTF-8"))
            continue
        yield RawRecord(loc, {"id": rel.as_posix(), "text": text.strip(), "label": rel.parts[0]}, None)

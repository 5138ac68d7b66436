"""Chunks that follow a document's structure: a Markdown heading starts a new section, paragraphs are packed into
chunks of at most ``max_chars``, and a chunk repeats the end of the one before it (``overlap``) within a section.

Every chunk is an exact slice ``text[start:end]`` of its document, so a quoted span can be checked against its
source by offsets.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.M)
PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    heading: str  # the heading path ("Intro > Setup"), or "" before the first heading


def _sections(text: str) -> list[tuple[int, int, str]]:
    """(start, end, heading path) of each section; a section starts at its heading line."""
    cuts, path = [], []
    for m in HEADING.finditer(text):
        level = len(m.group(1))
        path = [*path[: level - 1], m.group(2).strip()]
        cuts.append((m.start(), " > ".join(path)))
    starts = [(0, "")] + cuts if not cuts or cuts[0][0] > 0 else cuts
    return [(s, starts[i + 1][0] if i + 1 < len(starts) else len(text), h) for i, (s, h) in enumerate(starts)]


def _pieces(text: str, start: int, end: int, max_chars: int) -> list[tuple[int, int]]:
    """Paragraphs of ``text[start:end]`` (stripped), each split at white space when longer than ``max_chars``."""
    out = []
    pos = start
    for m in list(PARAGRAPH_BREAK.finditer(text, start, end)) + [None]:
        stop = m.start() if m else end
        a, b = pos, stop
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        while b - a > max_chars:  # a long paragraph: cut at the last space that fits
            cut = text.rfind(" ", a, a + max_chars)
            cut = cut if cut > a else a + max_chars
            out.append((a, cut))
            a = cut
            while a < b and text[a].isspace():
                a += 1
        if b > a:
            out.append((a, b))
        pos = m.end() if m else end
    return out


def chunk_text(text: str, *, max_chars: int = 800, overlap: int = 120) -> list[Span]:
    """Chunks of ``text`` by structure (see the module docstring).

    Raises:
        ValueError: ``overlap`` is not smaller than ``max_chars``.
    """
    if not 0 <= overlap < max_chars:
        raise ValueError(f"overlap must be in [0, max_chars), got {overlap} with max_chars {max_chars}")
    spans: list[Span] = []
    for s_start, s_end, heading in _sections(text):
        current: tuple[int, int] | None = None
        # pieces leave room for the overlap, so a chunk can always begin with the end of the one before
        for a, b in _pieces(text, s_start, s_end, max_chars - overlap):
            if current and b - current[0] <= max_chars:
                current = (current[0], b)
                continue
            if current:
                spans.append(Span(current[0], current[1], heading))
                if overlap:  # start on a word inside the last `overlap` characters of the chunk before
                    back = text.find(" ", current[1] - overlap, current[1])
                    a = back + 1 if back != -1 else a
            current = (a, b)
        if current:
            spans.append(Span(current[0], current[1], heading))
    return spans

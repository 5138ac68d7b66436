"""FOLDOC, the Free On-line Dictionary of Computing (Debian ``dict-foldoc``).

Entries are read through the dictd index (aliases share an entry), cleaned of markup
(``{cross references}``, citations, dates) and offered two ways: SFT pairs
"What does X mean in computing?" -> the definition's first paragraph, and classification of
definitions by their first subject tag. Entries whose definition is only a cross reference
(fewer than ``MIN_WORDS`` words) are left out; ``stats()`` counts them.
"""

from __future__ import annotations

import gzip
import html
import os
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path

from ...cache import debian_root
from ...errors import AssetMissingError

INSTALL = "sudo apt-get install dict-foldoc   (or without root: make assets, which unpacks it into the cache)"
MIN_WORDS = 4
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_SUBJECT = re.compile(r"^<([^>]*)>\s*")
_XREF = re.compile(r"\{([^{}]*?)(?:\s+\([^(){}]*\))?\}")
_DATE = re.compile(r"^\(\d{4}-\d{2}-\d{2}\)$")


def dict_dir() -> Path:
    candidates = [os.environ.get("NICHETUNE_FOLDOC_DIR"), "/usr/share/dictd",
                  str(debian_root() / "usr/share/dictd")]
    for folder in filter(None, candidates):
        if (Path(folder) / "foldoc.dict.dz").is_file() and (Path(folder) / "foldoc.index").is_file():
            return Path(folder)
    raise AssetMissingError("the Debian package dict-foldoc is not installed", hint=INSTALL)


def _b64(value: str) -> int:
    number = 0
    for ch in value:
        number = number * 64 + _B64.index(ch)
    return number


def _paragraphs(body: str) -> list[str]:
    paras = [" ".join(p.split()) for p in re.split(r"\n\s*\n", body) if p.strip()]
    keep = []
    for para in paras:
        if _DATE.match(para) or para.startswith("[") or para.lower().startswith("see also"):
            continue
        para = html.unescape(_XREF.sub(lambda m: m.group(1), para))
        keep.append(para.replace("{", "").replace("}", ""))
    return keep


@lru_cache(maxsize=1)
def entries() -> tuple[dict, ...]:
    """Every FOLDOC entry once: term, aliases, subjects, paragraphs."""
    folder = dict_dir()
    data = gzip.decompress((folder / "foldoc.dict.dz").read_bytes())
    seen: dict[int, dict] = {}
    for line in (folder / "foldoc.index").read_text(encoding="utf-8").splitlines():
        parts = line.split("\t")
        if len(parts) != 3 or parts[0].startswith("00-database"):
            continue
        offset, length = _b64(parts[1]), _b64(parts[2])
        if offset in seen:
            continue
        text = data[offset : offset + length].decode("utf-8", "replace")
        head, _, body = text.partition("\n\n")
        heads = [h.strip() for h in head.splitlines() if h.strip()]
        body = body.strip()
        subjects: list[str] = []
        match = _SUBJECT.match(body)
        if match:
            subjects = [s.strip() for s in match.group(1).split(",") if s.strip()]
            body = body[match.end():]
        seen[offset] = {"term": html.unescape(heads[0]) if heads else parts[0],
                        "aliases": [html.unescape(h) for h in heads[1:]],
                        "subjects": subjects, "paragraphs": _paragraphs(body)}
    return tuple(seen.values())


def _usable() -> Iterator[dict]:
    for entry in entries():
        if entry["paragraphs"] and len(entry["paragraphs"][0].split()) >= MIN_WORDS:
            yield entry


def stats() -> dict:
    total = len(entries())
    usable = sum(1 for _ in _usable())
    return {"entries": total, "usable": usable, "left_out_cross_reference_only": total - usable}


def load_sft() -> Iterator[dict]:
    for entry in _usable():
        yield {
            "id": entry["term"],
            "messages": [
                {"role": "user", "content": f"What does {entry['term']} mean in computing?"},
                {"role": "assistant", "content": entry["paragraphs"][0]},
            ],
            "term": entry["term"],
            "group": entry["term"].lower(),
            "subject": entry["subjects"][0] if entry["subjects"] else "(none)",
            "definition": "\n\n".join(entry["paragraphs"]),
        }


def load_subjects() -> Iterator[dict]:
    for entry in _usable():
        if entry["subjects"]:
            yield {"id": entry["term"], "text": entry["paragraphs"][0], "label": entry["subjects"][0],
                   "term": entry["term"], "group": entry["term"].lower(), "subjects": entry["subjects"]}

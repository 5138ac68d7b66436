"""Reading the documents an index is built from: text, Markdown, HTML, PDF and JSONL, with bad input quarantined.

A JSONL line needs ``text`` (and may give ``id`` and ``title``); a line that is not JSON or lacks ``text`` goes to
the quarantine with its file, line and reason. PDF text comes from ``pypdf`` (the ``retrieval`` extra), pages
separated as paragraphs; a PDF with no text layer (a scan) is quarantined, since nothing here reads images.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

SUFFIXES = {".txt": "text", ".md": "markdown", ".markdown": "markdown", ".html": "html", ".htm": "html",
            ".jsonl": "jsonl", ".pdf": "pdf"}


@dataclass(frozen=True)
class Document:
    id: str
    source: str  # file path, and line for JSONL
    text: str
    sha256: str


class _Text(HTMLParser):
    BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "pre"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.skip += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")
            if tag[0] == "h" and tag[1:].isdigit():
                self.parts.append("#" * int(tag[1:]) + " ")  # headings keep their level, as Markdown

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.skip = max(0, self.skip - 1)
        elif tag in self.BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def html_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    lines = [" ".join(line.split()) for line in "".join(parser.parts).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def pdf_text(path: Path) -> str:
    """The text layer of a PDF, one paragraph per page.

    Raises:
        ValueError: the file is not a readable PDF.
    """
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        pages = [page.extract_text() or "" for page in PdfReader(path).pages]
    except (PdfReadError, KeyError, TypeError) as exc:
        raise ValueError(f"not a readable PDF ({exc})") from exc
    return "\n\n".join(p.strip() for p in pages if p.strip())


def _files(paths: list[str | Path]) -> list[Path]:
    out = []
    for p in map(Path, paths):
        out += sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    return out


def read_documents(paths: list[str | Path]) -> tuple[list[Document], list[dict]]:
    """Documents from files and folders, and the quarantine: one ``{"source", "reason"}`` per input refused."""
    docs, bad = [], []
    for path in _files(paths):
        kind = SUFFIXES.get(path.suffix.lower())
        if kind is None:
            bad.append({"source": str(path), "reason": f"unsupported file type {path.suffix or '(none)'}; "
                                                      f"readable: {', '.join(sorted(SUFFIXES))}"})
            continue
        try:
            raw = pdf_text(path) if kind == "pdf" else path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError, ValueError) as exc:
            bad.append({"source": str(path), "reason": f"cannot be read: {exc}"})
            continue
        if kind != "jsonl":
            text = html_text(raw) if kind == "html" else raw
            if text.strip():
                docs.append(Document(path.stem, str(path), text, _sha(text)))
            else:
                bad.append({"source": str(path), "reason": "no text"})
            continue
        for line_no, line in enumerate(raw.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                row = json.loads(line)
            except ValueError as exc:
                bad.append({"source": where, "reason": f"not JSON: {exc}"})
                continue
            if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not row["text"].strip():
                bad.append({"source": where, "reason": "field 'text' is missing or empty"})
                continue
            text = (f"# {row['title']}\n\n" if row.get("title") else "") + row["text"]
            docs.append(Document(str(row.get("id", f"{path.stem}-{line_no}")), where, text,
                                 _sha(text)))
    return docs, bad


PII_ACTIONS = ("keep", "mask", "quarantine")


def screen_documents(docs: list[Document], pii: str = "keep") -> tuple[list[Document], list[dict], dict]:
    """The rules training data follows, for documents: a repeated id is quarantined (the first one stays), and
    PII is found in every document and kept (counted), masked as ``[TYPE]`` (the text indexed and quoted is the
    masked one), or the document is quarantined. Returns ``(kept, quarantined, {"action", "per_document": {id:
    {type: count}}})`` (quarantined documents are not counted).

    Raises:
        ValueError: an unknown ``pii`` action.
    """
    from collections import Counter

    from ..data.pii.detectors import PiiDetector
    from ..data.pii.transform import mask_text

    if pii not in PII_ACTIONS:
        raise ValueError(f"unknown PII action {pii!r}; use one of {', '.join(PII_ACTIONS)}")
    detector, seen, kept, bad, per_document = PiiDetector(), {}, [], [], {}
    for doc in docs:
        if doc.id in seen:
            bad.append({"source": doc.source, "reason": f"duplicate document id {doc.id!r} (first at {seen[doc.id]})"})
            continue
        seen[doc.id] = doc.source
        findings = detector.find(doc.text)
        if findings:
            found = ", ".join(sorted({f.type for f in findings}))
            if pii == "quarantine":
                bad.append({"source": doc.source, "reason": f"holds PII ({found}); --pii mask indexes it masked"})
                continue
            per_document[doc.id] = dict(sorted(Counter(f.type for f in findings).items()))
            if pii == "mask":
                text = mask_text(doc.text, findings)
                doc = Document(doc.id, doc.source, text, _sha(text))
        kept.append(doc)
    return kept, bad, {"action": pii, "per_document": per_document}

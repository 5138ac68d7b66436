"""Run PII detection over a data file: report, mask, pseudonymise, or re-identify with a vault."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import NichetuneError
from ..rows import load_rows, write_rows
from ..schema import FieldMap
from .detectors import PiiDetector
from .transform import mask_text, masked_sample, pseudonymize_text
from .vault import PiiVault, load_or_create_key

ACTIONS = ("report", "mask", "pseudonymize", "reidentify")


STRUCTURAL_KEYS = frozenset({"role"})  # chat roles name a speaker kind, never a person


def string_slots(row: dict, fields: Collection[str] | None = None):
    """``(field, getter, setter)`` for every string in ``row``, nested lists and objects included.

    ``field`` is the top-level key (``messages`` for every message's content). With ``fields``,
    only those top-level keys are visited.
    """

    def walk(container, key, field):
        value = container[key]
        if isinstance(value, str):
            yield field, (lambda: container[key]), (lambda v: container.__setitem__(key, v))
        elif isinstance(value, dict):
            for k in value:
                if k not in STRUCTURAL_KEYS:
                    yield from walk(value, k, field)
        elif isinstance(value, list):
            for i in range(len(value)):
                yield from walk(value, i, field)

    for key in list(row):
        if fields is None or key in fields:
            yield from walk(row, key, key)


@dataclass
class PiiTally:
    """What a pass over rows found: by type, by field (and type), rows affected, masked samples."""

    by_type: Counter = field(default_factory=Counter)
    rows_by_type: Counter = field(default_factory=Counter)
    by_field: dict[str, Counter] = field(default_factory=dict)
    samples: dict[str, list[str]] = field(default_factory=dict)
    rows_with: int = 0

    def summary(self, rows: int) -> dict:
        return {"rows_with_pii": self.rows_with, "share_of_rows": round(self.rows_with / max(rows, 1), 4),
                "by_type": {t: {"findings": c, "rows": self.rows_by_type[t], "masked_samples": self.samples[t]}
                            for t, c in self.by_type.most_common()},
                "by_field": {f: dict(c.most_common()) for f, c in sorted(self.by_field.items())}}


def apply_to_rows(rows: list[dict], action: str, detector: PiiDetector, *, key: bytes = b"", store=None,
                  samples: int = 0, fields: Collection[str] | None = None) -> PiiTally:
    """Apply ``action`` to every string field of ``rows`` (or only ``fields``) in place."""
    tally = PiiTally()
    for row in rows:
        types: set[str] = set()
        for name, get, put in string_slots(row, fields):
            text = get()
            if action == "reidentify":
                put(store.reidentify(text))
                continue
            found = detector.find(text)
            for f in found:
                types.add(f.type)
                tally.by_type[f.type] += 1
                tally.by_field.setdefault(name, Counter())[f.type] += 1
                if len(tally.samples.setdefault(f.type, [])) < samples:
                    tally.samples[f.type].append(f"{row.get('id', '?')} {name}: {masked_sample(text, f)}")
            if action == "mask":
                put(mask_text(text, found))
            elif action == "pseudonymize":
                put(pseudonymize_text(text, found, key, store.record if store else None))
        tally.rows_with += bool(types)
        tally.rows_by_type.update(types)
    return tally


def pii_file(path: str | Path, *, action: str, out: str | Path | None = None, task: str | None = None,
             fields: FieldMap | None = None, detector: PiiDetector | None = None,
             key_file: str | Path | None = None, vault: str | Path | None = None, samples: int = 3,
             only: Collection[str] | None = None, quarantine: str | Path | None = None) -> dict:
    """Apply ``action`` to every string field of ``path`` (``only`` narrows to those fields).

    Rows that fail validation go to ``quarantine``, as with ``data validate``. Returns counts by type
    and by field, masked samples and the quarantine count.
    """
    if action not in ACTIONS:
        raise NichetuneError(f"unknown action {action!r}", hint=f"use one of {', '.join(ACTIONS)}")
    if action != "report" and out is None:
        raise NichetuneError(f"--action {action} writes a new file", hint="pass --out FILE")
    loaded = load_rows(path, task=task, fields=fields, quarantine=quarantine)
    detector = detector or PiiDetector()
    store = PiiVault(vault, data_dir=Path(out).parent if out else None) if vault else None
    if action == "reidentify" and store is None:
        raise NichetuneError("re-identification needs the vault written by --action pseudonymize",
                             hint="pass --vault PATH")
    key = load_or_create_key(key_file) if action == "pseudonymize" else b""
    try:
        tally = apply_to_rows(loaded.rows, action, detector, key=key, store=store, samples=samples, fields=only)
        if out is not None:
            write_rows(out, loaded.rows)
    finally:
        if store:
            store.close()
    return {"file": str(path), "action": action, "rows": len(loaded.rows), **tally.summary(len(loaded.rows)),
            "quarantined": loaded.report.quarantined, "quarantine": loaded.report.quarantine_path,
            "fields": sorted(only) if only else "all string fields", "out": str(out) if out else None}

"""Run PII detection over a data file: report, mask, pseudonymise, or re-identify with a vault."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from ...errors import NichetuneError
from ..rows import load_rows, write_rows
from ..schema import FieldMap
from .detectors import PiiDetector
from .transform import mask_text, masked_sample, pseudonymize_text
from .vault import PiiVault, load_or_create_key

ACTIONS = ("report", "mask", "pseudonymize", "reidentify")


def text_slots(row: dict):
    """(getter, setter) pairs for every free-text field of a normalised row."""
    if "text" in row:
        yield lambda: row["text"], lambda v: row.__setitem__("text", v)
    for m in row.get("messages", []):
        yield (lambda m=m: m["content"]), (lambda v, m=m: m.__setitem__("content", v))


def apply_to_rows(rows: list[dict], action: str, detector: PiiDetector, *, key: bytes = b"", store=None,
                  samples: int = 0) -> tuple[Counter, dict[str, list[str]], int]:
    """Apply ``action`` to every text field of ``rows`` in place: (findings by type, masked samples, rows hit)."""
    counts: Counter = Counter()
    shown: dict[str, list[str]] = {}
    rows_with = 0
    for row in rows:
        hit = False
        for get, put in text_slots(row):
            text = get()
            if action == "reidentify":
                put(store.reidentify(text))
                continue
            found = detector.find(text)
            hit |= bool(found)
            for f in found:
                counts[f.type] += 1
                if len(shown.setdefault(f.type, [])) < samples:
                    shown[f.type].append(f"{row['id']}: {masked_sample(text, f)}")
            if action == "mask":
                put(mask_text(text, found))
            elif action == "pseudonymize":
                put(pseudonymize_text(text, found, key, store.record if store else None))
        rows_with += hit
    return counts, shown, rows_with


def pii_file(path: str | Path, *, action: str, out: str | Path | None = None, task: str | None = None,
             fields: FieldMap | None = None, detector: PiiDetector | None = None,
             key_file: str | Path | None = None, vault: str | Path | None = None, samples: int = 3) -> dict:
    """Apply ``action`` to every text field of ``path``; returns counts by type and masked samples."""
    if action not in ACTIONS:
        raise NichetuneError(f"unknown action {action!r}", hint=f"use one of {', '.join(ACTIONS)}")
    if action != "report" and out is None:
        raise NichetuneError(f"--action {action} writes a new file", hint="pass --out FILE")
    loaded = load_rows(path, task=task, fields=fields)
    detector = detector or PiiDetector()
    store = PiiVault(vault, data_dir=Path(out).parent if out else None) if vault else None
    if action == "reidentify" and store is None:
        raise NichetuneError("re-identification needs the vault written by --action pseudonymize",
                             hint="pass --vault PATH")
    key = load_or_create_key(key_file) if action == "pseudonymize" else b""
    try:
        counts, shown, rows_with = apply_to_rows(loaded.rows, action, detector, key=key, store=store,
                                                 samples=samples)
        if out is not None:
            write_rows(out, loaded.rows)
    finally:
        if store:
            store.close()
    return {"file": str(path), "action": action, "rows": len(loaded.rows), "rows_with_pii": rows_with,
            "quarantined": loaded.report.quarantined,
            "by_type": {t: {"findings": c, "masked_samples": shown[t]} for t, c in counts.most_common()},
            "out": str(out) if out else None}

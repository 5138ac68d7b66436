"""``nichetune data audit``: one report on a dataset's size, balance, lengths, duplicates, leakage,
PII, vocabulary, slices and annotator agreement."""

from __future__ import annotations

import time
from pathlib import Path

from ..rows import load_rows, row_text
from ..schema import FieldMap, row_schema
from .agreement import agreement_section
from .duplicates import duplicate_section, leakage_section, shared_near_pairs
from .overview import length_section, overview_section
from .pii_section import pii_section
from .vocab import slice_section, vocab_section


def _annotator_columns(rows: list[dict], explicit: list[str] | None) -> list[str]:
    if explicit:
        return explicit
    keys = {k for r in rows[:1000] for k in r}
    return sorted(k for k in keys if k.startswith(("label_", "annotator_", "rater_")))


def audit_dataset(
    path: str | Path,
    *,
    tests: list[str | Path] = (),
    task: str | None = None,
    fields: FieldMap | None = None,
    tokenizer: str | None = None,
    max_length: int = 512,
    near_threshold: float = 0.7,
    slice_fields: list[str] | None = None,
    min_slice: int = 20,
    label_columns: list[str] | None = None,
    quarantine: str | Path | None = None,
) -> dict:
    """Audit ``path`` (and ``tests``, other splits of the same data) and return the report as a dict.

    Example:
        >>> report = audit_dataset("train.jsonl", tests=["test.jsonl"], tokenizer="minilm-l6")  # doctest: +SKIP
    """
    started = time.perf_counter()
    fields = fields or FieldMap()
    train = load_rows(path, task=task, fields=fields, quarantine=quarantine)
    others = {Path(p).name: load_rows(p, task=train.task, fields=fields) for p in tests}
    tok = None
    if tokenizer:
        from ...models.loading import load_tokenizer

        tok = load_tokenizer(tokenizer)
    rows = train.rows
    texts = [row_text(r) for r in rows]
    slices = list(slice_fields or fields.slices)
    if any(r.get("synthetic") for r in rows):
        slices.append("synthetic")
    within, cross = shared_near_pairs(rows, {name: o.rows for name, o in others.items()}, near_threshold)
    report = {
        "file": str(path), "task": train.task,
        "validation": train.report.to_dict(),
        "overview": overview_section(rows, train.task),
        "lengths": length_section(texts, tok, max_length),
        "duplicates": duplicate_section(rows, near_threshold, within),
        "leakage": {name: leakage_section(rows, o.rows, near_threshold, cross_pairs=cross[name])
                    for name, o in others.items()},
        "pii": pii_section(rows),
        "vocabulary": vocab_section(texts, {n: [row_text(r) for r in o.rows] for n, o in others.items()}, tok,
                                    labels=[r["label"] for r in rows] if row_schema(train.task).labelled else None),
        "slices": slice_section(rows, slices, min_slice),
        "agreement": agreement_section(rows, _annotator_columns(rows, label_columns)),
        "splits": {name: {"rows": len(o.rows), "quarantined": o.report.quarantined} for name, o in others.items()},
    }
    report["warnings"] = _warnings(report)
    report["seconds"] = round(time.perf_counter() - started, 2)
    return report


def _warnings(report: dict) -> list[str]:
    out = list(report["overview"]["warnings"])
    v = report["validation"]
    if v["quarantined"]:
        out.append(f"{v['quarantined']} rows failed validation and were quarantined")
    d = report["duplicates"]
    if d["redundant_rows"]:
        out.append(f"{d['redundant_rows']} redundant rows in {d['exact_clusters']} exact and {d['near_clusters']} "
                   "near-duplicate clusters (nichetune data dedup)")
    if d["conflicting_label_clusters"]:
        out.append(f"{len(d['conflicting_label_clusters'])} duplicate clusters carry conflicting labels")
    for name, leak in report["leakage"].items():
        if leak["leaked_rows"]:
            out.append(f"{leak['leaked_rows']} rows of {name} leak from train ({len(leak['exact'])} exact, "
                       f"{len(leak['near'])} near, {len(leak['shared_groups'])} shared groups)")
    if report["pii"]["rows_with_pii"]:
        types = ", ".join(report["pii"]["by_type"])
        out.append(f"PII in {report['pii']['rows_with_pii']} rows ({types}): nichetune data pii --action mask")
    lengths = report["lengths"]
    if lengths.get("truncated_share"):
        out.append(f"{lengths['truncated_share']:.1%} of rows exceed {lengths['max_length']} {lengths['unit']} "
                   "and would be truncated")
    for key, s in report["slices"].items():
        if s["under_minimum"]:
            out.append(f"{len(s['under_minimum'])} values of slice '{key}' have fewer than {s['minimum']} rows")
    return out

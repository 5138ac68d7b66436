"""Duplicate clusters inside a file, conflicting labels, and leakage between splits."""

from __future__ import annotations

from ..near_dup import duplicate_clusters, near_pairs, text_hash
from ..rows import row_text


def duplicate_section(rows: list[dict], threshold: float, pairs: list | None = None) -> dict:
    texts = [row_text(r) for r in rows]
    clusters = duplicate_clusters(texts, threshold=threshold, pairs=pairs)
    listed, conflicts = [], []
    for c in clusters:
        ids = [rows[i]["id"] for i in c.members]
        labels = sorted({str(rows[i].get("label")) for i in c.members if rows[i].get("label") is not None})
        entry = {"kind": c.kind, "ids": ids, "size": len(ids), "min_jaccard": c.min_jaccard}
        if len(labels) > 1:
            entry["labels"] = labels
            conflicts.append(entry)
        listed.append(entry)
    exact = [c for c in listed if c["kind"] == "exact"]
    near = [c for c in listed if c["kind"] == "near"]
    return {"threshold": threshold, "exact_clusters": len(exact), "near_clusters": len(near),
            "rows_in_clusters": sum(c["size"] for c in listed),
            "redundant_rows": sum(c["size"] - 1 for c in listed),
            "clusters": listed, "conflicting_label_clusters": conflicts}


def leakage_section(train: list[dict], other: list[dict], threshold: float, group_field: str = "group",
                    cross_pairs: list | None = None) -> dict:
    """Rows of ``other`` (test/validation) that duplicate, nearly duplicate, or share a group with train.

    ``cross_pairs`` are precomputed ``(train index, other index, jaccard)`` near pairs.
    """
    train_hashes: dict[str, str] = {}
    for r in train:
        train_hashes.setdefault(text_hash(row_text(r)), r["id"])
    exact = [{"train_id": train_hashes[h], "other_id": r["id"]}
             for r in other if (h := text_hash(row_text(r))) in train_hashes]
    if cross_pairs is None:
        n = len(train)
        combined = [row_text(r) for r in train] + [row_text(r) for r in other]
        cross_pairs = [(i, j - n, sim) for i, j, sim in near_pairs(combined, threshold=threshold) if i < n <= j]
    near = [{"train_id": train[i]["id"], "other_id": other[j]["id"], "jaccard": round(sim, 4)}
            for i, j, sim in cross_pairs]
    train_groups = {str(r[group_field]) for r in train if r.get(group_field) not in (None, "")}
    shared: dict[str, list[str]] = {}
    for r in other:
        g = r.get(group_field)
        if g not in (None, "") and str(g) in train_groups:
            shared.setdefault(str(g), []).append(r["id"])
    return {"exact": exact, "near": near, "shared_groups": shared,
            "leaked_rows": len({e["other_id"] for e in exact} | {e["other_id"] for e in near}
                               | {i for ids in shared.values() for i in ids})}


def shared_near_pairs(train: list[dict], others: dict[str, list[dict]], threshold: float):
    """One LSH pass over train and every other split: (pairs within train, {name: cross pairs})."""
    texts = [row_text(r) for r in train]
    spans = {}
    for name, rows in others.items():
        spans[name] = (len(texts), len(texts) + len(rows))
        texts += [row_text(r) for r in rows]
    n = len(train)
    within, cross = [], {name: [] for name in others}
    for i, j, sim in near_pairs(texts, threshold=threshold):
        if j < n:
            within.append((i, j, sim))
        elif i < n:
            name = next(k for k, (lo, hi) in spans.items() if lo <= j < hi)
            cross[name].append((i, j - spans[name][0], sim))
    return within, cross

"""Remove exact and near duplicates, keeping one row per cluster and recording why others went."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from .near_dup import duplicate_clusters
from .rows import row_text


@dataclass
class DedupResult:
    kept: list[dict]
    removed: list[dict]  # each: {"row", "reason", "kept_id", "cluster", "min_jaccard"}
    conflicts: int  # clusters whose rows disagree on the label


def dedup_rows(rows: list[dict], *, threshold: float = 0.85, keep: str = "first", ngram: int = 3,
               num_perm: int = 128) -> DedupResult:
    """Keep one row per duplicate cluster.

    Args:
        keep: ``first`` keeps the earliest row; ``majority`` keeps the earliest row carrying the
            cluster's most common label (ties: the earliest row's label).
    """
    if keep not in ("first", "majority"):
        raise ValueError("keep must be 'first' or 'majority'")
    clusters = duplicate_clusters([row_text(r) for r in rows], threshold=threshold, ngram=ngram, num_perm=num_perm)
    drop: dict[int, dict] = {}
    conflicts = 0
    for number, cluster in enumerate(clusters, start=1):
        members = cluster.members
        labels = [rows[i].get("label") for i in members]
        if len(set(labels)) > 1:
            conflicts += 1
        winner = members[0]
        if keep == "majority" and labels[0] is not None:
            counts = Counter(labels)
            top = max(counts.values())
            majority = next(lab for lab in labels if counts[lab] == top)
            winner = next(i for i in members if rows[i].get("label") == majority)
        for i in members:
            if i != winner:
                reason = f"{cluster.kind} duplicate of {rows[winner]['id']}"
                if rows[i].get("label") != rows[winner].get("label"):
                    reason += f" (label {rows[i].get('label')!r} lost to {rows[winner].get('label')!r})"
                drop[i] = {"row": rows[i], "reason": reason, "kept_id": rows[winner]["id"], "cluster": number,
                           "kind": cluster.kind, "min_jaccard": cluster.min_jaccard}
    kept = [r for i, r in enumerate(rows) if i not in drop]
    return DedupResult(kept, [drop[i] for i in sorted(drop)], conflicts)

"""Rank arithmetic for retrieval: reciprocal rank fusion of several rankings."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

RRF_K = 60  # Cormack et al. 2009: the constant that damps the weight of top ranks


def reciprocal_rank_fusion(rankings: Sequence[Sequence[Hashable]], k: int = RRF_K) -> list[tuple[Hashable, float]]:
    """Fuse rankings (best first) by summing ``1 / (k + rank)`` (rank from 1) per item; best first, ties by
    first appearance."""
    scores: dict[Hashable, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    order = {item: i for i, item in enumerate(scores)}
    return sorted(scores.items(), key=lambda kv: (-kv[1], order[kv[0]]))

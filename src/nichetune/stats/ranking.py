"""Rank arithmetic for retrieval: reciprocal rank fusion, and recall@k, reciprocal rank and nDCG@k."""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Mapping, Sequence

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


def recall_at_k(ranked: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """Share of the relevant items found in the top ``k`` (0 when nothing is relevant)."""
    return len(set(ranked[:k]) & set(relevant)) / len(relevant) if relevant else 0.0


def reciprocal_rank(ranked: Sequence[Hashable], relevant: Collection[Hashable]) -> float:
    """1 / the rank of the first relevant item (0 when none is ranked); MRR is its mean over queries."""
    return next((1.0 / rank for rank, item in enumerate(ranked, start=1) if item in relevant), 0.0)


def ndcg_at_k(ranked: Sequence[Hashable], gains: Mapping[Hashable, float], k: int) -> float:
    """Normalised discounted cumulative gain at ``k`` with linear gains (as trec_eval's ndcg_cut):
    sum of gain / log2(rank + 1) over the top ``k``, divided by the same sum for the ideal order."""
    dcg = sum(gains.get(item, 0.0) / math.log2(rank + 1) for rank, item in enumerate(ranked[:k], start=1))
    ideal = sorted((g for g in gains.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 1) for rank, g in enumerate(ideal, start=1))
    return dcg / idcg if idcg else 0.0

"""How well an index retrieves: recall@k, MRR and nDCG@k on labelled questions, for BM25, dense and hybrid search,
with paired-bootstrap verdicts of hybrid against each single list on the same questions.

Questions come as JSONL: ``{"question": ..., "relevant": ["doc id", ...]}`` or graded
``{"relevant": {"doc id": 2, ...}}``. Relevance is judged per document: a ranking of chunks becomes a ranking of
their documents, each counted at its best chunk.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import NichetuneError
from ..stats.ranking import ndcg_at_k, recall_at_k, reciprocal_rank
from ..stats.significance import paired_bootstrap, verdict
from .index import MODES, Index

METRICS = ("recall", "mrr", "ndcg")


def read_questions(path: str | Path) -> list[dict]:
    """Labelled questions, each with ``gains`` ({doc id: grade}).

    Raises:
        NichetuneError: a line is not JSON or lacks ``question`` / ``relevant`` (file and line named).
    """
    out = []
    for n, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            relevant = row["relevant"]
            gains = {str(d): float(g) for d, g in relevant.items()} if isinstance(relevant, dict) else {
                str(d): 1.0 for d in relevant}
            if not isinstance(row["question"], str) or not gains:
                raise ValueError("empty")
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise NichetuneError(f"{path}:{n}: needs 'question' (text) and 'relevant' (doc ids) ({exc})",
                                 hint='one JSON object per line: {"question": "...", "relevant": ["doc-id"]}') \
                from exc
        answer = row.get("answer")
        out.append({"question": row["question"], "gains": gains, **({"answer": str(answer)} if answer else {})})
    if not out:
        raise NichetuneError(f"{path} holds no questions", hint="one JSON object per line")
    return out


def _documents(hits) -> list[str]:
    seen: list[str] = []
    for h in hits:
        if h.chunk["doc"] not in seen:
            seen.append(h.chunk["doc"])
    return seen


def evaluate_index(index: Index, questions: list[dict], *, k: int = 10, pool: int = 50, reranker=None) -> dict:
    """Per mode: mean recall@k, MRR and nDCG@k (and per question); verdicts of hybrid vs BM25 and vs dense (and,
    with a ``reranker``, of hybrid + re-ranking vs hybrid)."""
    modes = [*MODES, *(["hybrid+rerank"] if reranker else [])]
    per: dict[str, dict[str, list[float]]] = {m: {name: [] for name in METRICS} for m in modes}
    for q in questions:
        relevant = [d for d, g in q["gains"].items() if g > 0]
        for mode in modes:
            search = dict(mode="hybrid", reranker=reranker, rerank_pool=pool) if mode == "hybrid+rerank" else dict(
                mode=mode)
            docs = _documents(index.search(q["question"], k=pool, pool=pool, **search))
            per[mode]["recall"].append(recall_at_k(docs, relevant, k))
            per[mode]["mrr"].append(reciprocal_rank(docs, relevant))
            per[mode]["ndcg"].append(ndcg_at_k(docs, q["gains"], k))
    means = {m: {name: float(np.mean(v)) for name, v in values.items()} for m, values in per.items()}
    verdicts = {}
    pairs = [("hybrid", "bm25", "BM25 alone"), ("hybrid", "dense", "dense alone")] + (
        [("hybrid+rerank", "hybrid", "hybrid retrieval")] if reranker else [])
    for mine, other, called in pairs:
        a, b = np.asarray(per[other]["ndcg"]), np.asarray(per[mine]["ndcg"])
        test = paired_bootstrap(lambda y, p: float(np.mean(p)), np.zeros(len(a)), a, b)
        verdicts[f"{mine} vs {other}"] = verdict(f"nDCG@{k}", test["delta"], test["ci_low"], test["ci_high"],
                                                 test["p_value"], a=called,
                                                 b="hybrid retrieval" if mine == "hybrid" else "re-ranked retrieval")
    return {"k": k, "questions": len(questions), "means": means, "per_question": per, "verdicts": verdicts}

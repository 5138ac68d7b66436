"""Training data for answering from retrieved sources (RAFT, Zhang et al. 2024, arXiv 2403.10131).

Each labelled question becomes one chat example: the sources are its gold chunk (the best-ranked chunk of a
relevant document) among distractors (the best-ranked chunks of other documents: hard negatives, as retrieval
will serve them), numbered in a shuffled order. The reply is the reference answer with every sentence citing the
gold source. For a share of the questions (``1 - p_gold``, exactly, chosen by the seed) the gold chunk is left
out: the reply is then the reference answer without citations (RAFT's choice, which teaches the model to fall
back on what it knows) or, with ``abstain``, a sentence saying the sources do not answer (which teaches it to
say so). Rows carry which chunks they hold; a manifest beside the file records the index, the questions and
every setting.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import NichetuneError
from .answer import SENTENCE, SYSTEM, prompt
from .index import Hit, Index

NO_ANSWER = "The sources do not answer this question."


def _cite(answer: str, n: int) -> str:
    """Every sentence of ``answer`` followed by `` [n]`` (before its closing punctuation is kept)."""
    parts = [s.strip() for s in SENTENCE.findall(answer) if s.strip()]
    return " ".join(f"{s[:-1]} [{n}]{s[-1]}" if s[-1] in ".!?" else f"{s} [{n}]" for s in parts)


def raft_examples(index: Index, questions: list[dict], *, distractors: int = 3, p_gold: float = 0.8,
                  abstain: bool = False, seed: int = 0, pool: int = 20) -> list[dict]:
    """One SFT row per question (``messages``, ``group``, and which chunks the sources are).

    Raises:
        NichetuneError: a question has no reference answer, or none of its relevant documents is in the index.
    """
    if not 0.0 <= p_gold <= 1.0:
        raise NichetuneError(f"p_gold must be between 0 and 1, got {p_gold}", hint="e.g. --p-gold 0.8")
    rng = np.random.default_rng(seed)
    with_gold = set(rng.permutation(len(questions))[: round(p_gold * len(questions))].tolist())
    by_doc: dict[str, list[int]] = {}
    for i, c in enumerate(index.chunks):
        by_doc.setdefault(c["doc"], []).append(i)
    rows = []
    for n, q in enumerate(questions):
        if not q.get("answer"):
            raise NichetuneError(f"question {n + 1} has no reference 'answer'", hint='add "answer": "..." to it')
        gold_docs = [d for d, g in q["gains"].items() if g > 0]
        if not any(d in by_doc for d in gold_docs):
            raise NichetuneError(f"question {n + 1} ({q['question'][:60]!r}): none of its relevant documents "
                                 f"({', '.join(gold_docs)}) is in the index", hint="build the index from them")
        ranked = index.search(q["question"], k=pool, pool=pool)
        gold = next((h for h in ranked if h.chunk["doc"] in gold_docs), None) or Hit(
            index.chunks[by_doc[next(d for d in gold_docs if d in by_doc)][0]], 0.0, {})
        negatives = [h for h in ranked if h.chunk["doc"] not in gold_docs]
        if len(negatives) < distractors + 1:  # too few retrieved: random chunks of other documents
            others = [i for i, c in enumerate(index.chunks) if c["doc"] not in gold_docs]
            chosen = {h.chunk["id"] for h in negatives}
            for i in rng.permutation(others):
                if len(negatives) > distractors or index.chunks[i]["id"] in chosen:
                    continue
                negatives.append(Hit(index.chunks[i], 0.0, {}))
        keep_gold = n in with_gold
        sources = ([gold] if keep_gold else []) + negatives[: distractors + (0 if keep_gold else 1)]
        sources = [sources[i] for i in rng.permutation(len(sources))]
        if keep_gold:
            reply = _cite(q["answer"], sources.index(gold) + 1)
        else:
            reply = NO_ANSWER if abstain else q["answer"]
        rows.append({"messages": [{"role": "system", "content": SYSTEM},
                                  {"role": "user", "content": prompt(q["question"], sources)},
                                  {"role": "assistant", "content": reply}],
                     "group": q.get("id") or q["question"], "gold_in_sources": keep_gold,
                     "gold_chunk": gold.chunk["id"], "source_chunks": " ".join(h.chunk["id"] for h in sources)})
    return rows


def write_raft(index: Index, questions_file: str | Path, out: str | Path, **settings) -> dict:
    """Write the RAFT rows of the questions in ``questions_file`` to ``out`` (JSONL) with a provenance manifest."""
    from ..atomic import atomic_write_text
    from ..data.provenance import record_step
    from ..hashing import MANIFEST_NAME
    from .evaluate import read_questions

    questions = read_questions(questions_file)
    rows = raft_examples(index, questions, **settings)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    gold = sum(r["gold_in_sources"] for r in rows)
    record_step("raft", inputs=[questions_file, index.folder / MANIFEST_NAME], outputs={"data": (out, len(rows))},
                params={"index": str(index.folder), **settings}, rows_in=len(questions),
                extra={"with_gold": gold, "without_gold": len(rows) - gold})
    return {"rows": len(rows), "with_gold": gold, "without_gold": len(rows) - gold, "out": str(out)}

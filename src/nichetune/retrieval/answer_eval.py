"""Answers with and without retrieval on the same questions: exact match, token F1 and ROUGE-L against reference
answers, citation recall and precision by span checks (no judge model), and paired-bootstrap verdicts.

Questions are the labelled JSONL of ``index eval`` with an ``answer`` field (the reference answer). The model
answers each question twice, greedily: once from its weights alone (closed book), once given the ``k`` best chunks
as numbered sources (``answer.prompt``). Markers ``[n]`` are removed before an answer is scored against its
reference.
"""

from __future__ import annotations

import numpy as np

from ..errors import NichetuneError
from ..eval.generation import exact_match, rouge_l, token_f1
from ..stats.significance import paired_bootstrap, verdict
from .answer import MARKER, SYSTEM, citation_scores, prompt
from .index import Index

ANSWER_METRICS = {"exact_match": exact_match, "token_f1": token_f1, "rouge_l": rouge_l}
NAMES = {"exact_match": "exact match", "token_f1": "token F1", "rouge_l": "ROUGE-L"}
LOW_CITATION_RECALL = 0.5  # below it, the summary says the model does not use its sources
CLOSED_BOOK = "Answer the question in one or two sentences."


def _mean(values) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def evaluate_answers(index: Index, questions: list[dict], model, *, k: int = 3, max_tokens: int = 64,
                     progress=None) -> dict:
    """Per question and on average: answer metrics with and without retrieval, citation scores of the answers
    with retrieval, whether a relevant document was among the sources; verdicts (with - without) per metric.

    ``model`` is a run directory, a model name, or a loaded ``(model, tokenizer)``.

    Raises:
        NichetuneError: a question has no reference ``answer``.
    """
    from ..infer.greedy import greedy_chat
    from ..infer.loading import load_causal_lm

    missing = [n for n, q in enumerate(questions, start=1) if not q.get("answer")]
    if missing:
        raise NichetuneError(f"question {missing[0]} has no reference 'answer'; answer metrics need one",
                             hint='add "answer": "..." to each line, or run `index eval` without --model')
    lm, tokenizer = model if isinstance(model, tuple) else load_causal_lm(model, dtype="auto", device="cpu")
    say = progress or (lambda text: None)
    say(f"closed book: {len(questions)} answers")
    closed = greedy_chat(lm, tokenizer, [[{"role": "system", "content": CLOSED_BOOK},
                                          {"role": "user", "content": q["question"]}] for q in questions], max_tokens)
    hits = [index.search(q["question"], k=k) for q in questions]
    say(f"with retrieval: {len(questions)} answers from {k} sources each")
    opened = greedy_chat(lm, tokenizer, [[{"role": "system", "content": SYSTEM},
                                          {"role": "user", "content": prompt(q["question"], h)}]
                                         for q, h in zip(questions, hits, strict=True)], max_tokens)
    rows = []
    for q, h, without, with_ in zip(questions, hits, closed, opened, strict=True):
        plain = " ".join(MARKER.sub("", with_).split())
        cites = citation_scores(with_, [x.chunk["text"] for x in h])
        rows.append({"question": q["question"], "reference": q["answer"], "without": without, "with": with_,
                     "sources": [x.chunk["id"] for x in h],
                     "gold_retrieved": any(x.chunk["doc"] in q["gains"] for x in h),
                     **{f"{name}_without": f(without, q["answer"]) for name, f in ANSWER_METRICS.items()},
                     **{f"{name}_with": f(plain, q["answer"]) for name, f in ANSWER_METRICS.items()},
                     "citation_recall": cites["recall"], "citation_precision": cites["precision"]})
    means = {"without": {name: _mean(r[f"{name}_without"] for r in rows) for name in ANSWER_METRICS},
             "with": {name: _mean(r[f"{name}_with"] for r in rows) for name in ANSWER_METRICS}}
    means["with"] |= {"citation_recall": _mean(r["citation_recall"] for r in rows),
                      "citation_precision": _mean(r["citation_precision"] for r in rows),
                      "gold_retrieved": _mean(float(r["gold_retrieved"]) for r in rows)}
    verdicts = {}
    for name in ANSWER_METRICS:
        a = np.array([r[f"{name}_without"] for r in rows])
        b = np.array([r[f"{name}_with"] for r in rows])
        test = paired_bootstrap(lambda y, p: float(np.mean(p)), np.zeros(len(a)), a, b)
        verdicts[name] = {**test, **verdict(NAMES[name], test["delta"], test["ci_low"], test["ci_high"],
                                            test["p_value"], a="the same model without retrieval",
                                            b="the model with retrieval")}
    return {"k": k, "questions": len(rows), "means": means, "verdicts": verdicts, "rows": rows,
            "summary": summary(means, verdicts, k)}


def summary(means: dict, verdicts: dict, k: int) -> str:
    """One honest sentence: whether retrieval made the answers better, and whether the model used its sources."""
    better = [NAMES[n] for n, v in verdicts.items() if v["verdict"] == "better"]
    worse = [NAMES[n] for n, v in verdicts.items() if v["verdict"] == "worse"]
    m = means["with"]
    found = f"a relevant document was among the {k} sources for {m['gold_retrieved']:.0%} of the questions"
    if better and not worse:
        head = f"Retrieval makes the answers significantly better on {', '.join(better)} ({found})."
    elif worse:
        head = f"Retrieval makes the answers significantly worse on {', '.join(worse)} ({found})."
    else:
        head = f"Retrieval does not make the answers significantly better on any metric, although {found}."
    recall = m["citation_recall"] or 0.0
    if recall < LOW_CITATION_RECALL:
        use = "it uses the sources but seldom says which" if better else "it does not use the sources it is given"
        head += (f" The model cites a supporting source for {recall:.0%} of its statements: {use}; train it on "
                 "retrieval-aware data (`nichetune index raft`).")
    return head


def compare(a: dict, b: dict, *, a_name: str, b_name: str, metric: str = "token_f1") -> dict:
    """Paired bootstrap of model ``b`` against model ``a``, both answering with retrieval, on the same questions.

    Raises:
        NichetuneError: the two results are not on the same questions.
    """
    if [r["question"] for r in a["rows"]] != [r["question"] for r in b["rows"]]:
        raise NichetuneError("the two evaluations are not on the same questions",
                             hint="evaluate both models on the same questions file")
    x = np.array([r[f"{metric}_with"] for r in a["rows"]])
    y = np.array([r[f"{metric}_with"] for r in b["rows"]])
    test = paired_bootstrap(lambda _, p: float(np.mean(p)), np.zeros(len(x)), x, y)
    return {**test, **verdict(NAMES[metric], test["delta"], test["ci_low"], test["ci_high"], test["p_value"],
                              a=a_name, b=b_name)}

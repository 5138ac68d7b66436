"""Text-generation metrics: exact match, token F1 (SQuAD-style), ROUGE-L, and domain-term metrics."""

from __future__ import annotations

import re
import string
from collections import Counter

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCT = str.maketrans("", "", string.punctuation)


def normalise_answer(text: str) -> str:
    """Lowercase, strip punctuation and articles, squeeze whitespace (the SQuAD convention)."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def exact_match(prediction: str, reference: str) -> float:
    return float(normalise_answer(prediction) == normalise_answer(reference))


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = normalise_answer(prediction).split(), normalise_answer(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def _lcs(a: list[str], b: list[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 on lowercased word tokens (longest common subsequence)."""
    pred, ref = prediction.lower().split(), reference.lower().split()
    if not pred or not ref:
        return 0.0
    lcs = _lcs(pred, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def _mentions(text: str, terms: list[str]) -> set[str]:
    lowered = f" {normalise_answer(text)} "
    return {t for t in terms if f" {normalise_answer(t)} " in lowered}


def term_metrics(predictions: list[str], references: list[str], glossary: list[str],
                 forbidden: list[str] | None = None) -> dict:
    """Domain-term use: of the glossary terms each reference mentions, the share the output also
    mentions (recall); of the terms the output mentions, the share the reference mentions
    (precision); and the share of outputs that use any forbidden term."""
    hit = wanted = used = right = 0
    for pred, ref in zip(predictions, references, strict=True):
        in_ref, in_pred = _mentions(ref, glossary), _mentions(pred, glossary)
        wanted += len(in_ref)
        hit += len(in_ref & in_pred)
        used += len(in_pred)
        right += len(in_pred & in_ref)
    bad = [bool(_mentions(p, forbidden or [])) for p in predictions]
    return {"term_recall": hit / wanted if wanted else None, "term_precision": right / used if used else None,
            "forbidden_rate": sum(bad) / len(bad) if bad else 0.0, "terms_in_references": wanted}


def generation_metrics(predictions: list[str], references: list[str]) -> dict:
    n = len(predictions)
    pairs = list(zip(predictions, references, strict=True))
    return {"exact_match": sum(exact_match(p, r) for p, r in pairs) / n if n else 0.0,
            "token_f1": sum(token_f1(p, r) for p, r in pairs) / n if n else 0.0,
            "rouge_l": sum(rouge_l(p, r) for p, r in pairs) / n if n else 0.0, "n": n}

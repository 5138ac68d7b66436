"""Answering from an index with citations that are checked, not trusted.

The model sees the retrieved chunks numbered ``[1]..[k]`` and is asked to cite them and to quote exact words.
Then, without a judge model, every claim is checked against the text it cites:
- a quoted span ("...") must appear in a source it cites (or, when it cites none, in any source);
- a sentence that cites ``[n]`` is supported when most of its content words occur in source ``n``;
- a marker that names no source is flagged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .index import Hit, Index

SYSTEM = ("Answer the question using only the numbered sources. After each sentence, cite the sources it uses "
          "as [1], [2]. When you use a source's exact words, put them in double quotes. If the sources do not "
          "answer the question, say so.")
MARKER = re.compile(r"\[(\d+)\]")
QUOTE = re.compile(r"[\"“]([^\"”]{8,}?)[\"”]")
SENTENCE = re.compile(r"[^.!?\n]+(?:[.!?]+|$)")
WORD = re.compile(r"[a-z0-9]{3,}")
SUPPORT_SHARE = 0.5  # content words of a citing sentence that must occur in the cited source


@dataclass
class Answer:
    question: str
    text: str
    sources: list[Hit]
    checks: list[dict] = field(default_factory=list)

    @property
    def unsupported(self) -> list[dict]:
        return [c for c in self.checks if not c["supported"]]


def prompt(question: str, hits: list[Hit]) -> str:
    numbered = "\n\n".join(f"[{n}] {' '.join(h.chunk['text'].split())}" for n, h in enumerate(hits, start=1))
    return f"Sources:\n\n{numbered}\n\nQuestion: {question}"


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _markers_near(text: str, start: int, end: int) -> list[int]:
    """Markers of the sentence around ``text[start:end]``: from the sentence end before it to the one after."""
    before = max(text.rfind(c, 0, start) for c in ".!?\n")
    after = min((i for i in (text.find(c, end) for c in ".!?\n") if i != -1), default=len(text))
    return [int(n) for n in MARKER.findall(text[before + 1:after + 1])]


def _statements(text: str, normalised: list[str]):
    """``(sentence, cited source numbers, {n: share of its content words in source n})`` per sentence that has
    content words; a full stop inside a quote does not end a sentence."""
    for sentence in SENTENCE.findall(QUOTE.sub(lambda m: m.group(0).replace(".", " "), text)):
        words = set(WORD.findall(MARKER.sub("", sentence.lower())))
        if not words:
            continue
        cited = sorted({int(n) for n in MARKER.findall(sentence) if 1 <= int(n) <= len(normalised)})
        shares = {n: len(words & set(WORD.findall(normalised[n - 1]))) / len(words) for n in cited}
        yield sentence.strip(), cited, shares


def citation_scores(text: str, sources: list[str]) -> dict:
    """Citation recall and precision of an answer by span checks (after ALCE, without an entailment model).

    Recall: the share of its statements (sentences) that cite a source supporting them. Precision: the share of
    its citations, ``[n]`` markers and quoted spans, that are supported (a marker naming no source never is).
    ``None`` where there is nothing to divide by: no statement, or no citation.
    """
    normalised = [_norm(s) for s in sources]
    statements = list(_statements(text, normalised))
    supported = sum(any(shares[n] >= SUPPORT_SHARE for n in cited) for _, cited, shares in statements)
    claims = [c for c in check_citations(text, sources) if c["kind"] != "answer"]
    return {"recall": supported / len(statements) if statements else None,
            "precision": sum(c["supported"] for c in claims) / len(claims) if claims else None,
            "statements": len(statements), "citations": len(claims)}


def check_citations(text: str, sources: list[str]) -> list[dict]:
    """One check per quote, per citing sentence and per bad marker in ``text``: what was claimed, against which
    source, and whether the source supports it. An answer that cites nothing gets one failed check saying so."""
    checks = []
    normalised = [_norm(s) for s in sources]

    def valid(numbers: list[int]) -> list[int]:
        return [n for n in numbers if 1 <= n <= len(sources)]

    for n in sorted({int(n) for n in MARKER.findall(text)} - set(valid([int(n) for n in MARKER.findall(text)]))):
        checks.append({"kind": "marker", "claim": f"[{n}]", "sources": [n], "supported": False,
                       "reason": f"there is no source [{n}] (1 to {len(sources)})"})
    for m in QUOTE.finditer(text):  # a quote may hold its own full stop: found in the whole text, not per sentence
        where = valid(_markers_near(text, m.start(), m.end())) or list(range(1, len(sources) + 1))
        quote = _norm(m.group(1)).strip(" .,;:!?")  # the quote's own closing punctuation is not the source's
        found = [n for n in where if quote in normalised[n - 1]]
        checks.append({"kind": "quote", "claim": m.group(1), "sources": where, "supported": bool(found),
                       "reason": f"found in [{found[0]}]" if found else "not found in the sources it cites"})
    for sentence, cited, shares in _statements(text, normalised):
        for n in cited:
            checks.append({"kind": "citation", "claim": sentence, "sources": [n],
                           "supported": shares[n] >= SUPPORT_SHARE,
                           "reason": f"{shares[n]:.0%} of its content words occur in [{n}]"})
    if text.strip() and not MARKER.search(text):
        checks.append({"kind": "answer", "claim": text.strip()[:200], "sources": [], "supported": False,
                       "reason": "the answer cites no source"})
    return checks


def ask(index: Index, question: str, model: str = "smollm2-135m-instruct", *, k: int = 3,
        max_tokens: int = 200, reranker=None) -> Answer:
    """Retrieve ``k`` chunks for ``question``, answer with ``model`` (a run or model), and check its citations."""
    from ..infer.generate import generate

    hits = index.search(question, k=k, reranker=reranker)
    text = generate(model, prompt(question, hits), system=SYSTEM, max_new_tokens=max_tokens)
    return Answer(question, text, hits, check_citations(text, [h.chunk["text"] for h in hits]))

"""Re-rankers: a second look at the best fused candidates, scoring each (question, chunk) pair together.

- ``cross:MODEL``: a cross-encoder (a sequence classifier over the pair: its single logit, or the last class's
  probability), e.g. an MS MARCO MiniLM cross-encoder folder or a classification run.
- ``lm:MODEL``: a chat model asked whether the passage answers the question; the score is the log-odds of "yes"
  over "no" for its next token (no text is generated).

Both run in fp32 on the CPU with ``trust_remote_code`` off, through the same safe loaders as everything else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..errors import NichetuneError

JUDGE = ("Passage: {passage}\n\nQuestion: {question}\n\nDoes the passage answer the question? "
         "Answer yes or no.")


@dataclass
class Reranker:
    """``scores(question, passages)``: one relevance score per passage, higher is more relevant."""

    spec: str
    scores: Callable[[str, list[str]], np.ndarray]


def _cross(reference: str) -> Reranker:
    import torch

    from ..infer.loading import load_sequence_classifier

    model, tokenizer = load_sequence_classifier(reference, dtype="fp32", device="cpu")

    def scores(question: str, passages: list[str]) -> np.ndarray:
        enc = tokenizer([question] * len(passages), passages, truncation=True, max_length=512, padding=True,
                        return_tensors="pt")
        with torch.inference_mode():
            logits = model(**enc).logits.float()
        return (logits[:, 0] if logits.shape[1] == 1 else logits.softmax(-1)[:, -1]).numpy()

    return Reranker(f"cross:{reference}", scores)


def _lm(reference: str) -> Reranker:
    import torch

    from ..infer.loading import load_causal_lm

    model, tokenizer = load_causal_lm(reference, dtype="fp32", device="cpu")
    yes, no = (tokenizer.encode(w, add_special_tokens=False)[0] for w in ("yes", "no"))

    def scores(question: str, passages: list[str]) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for passage in passages:
                messages = [{"role": "user", "content": JUDGE.format(passage=" ".join(passage.split()),
                                                                      question=question)}]
                ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                    return_dict=True)["input_ids"]
                logits = model(input_ids=ids).logits[0, -1].float().log_softmax(-1)
                out.append(float(logits[yes] - logits[no]))
        return np.asarray(out)

    return Reranker(f"lm:{reference}", scores)


RERANKERS: dict[str, Callable[[str], Reranker]] = {"cross": _cross, "lm": _lm}


def load_reranker(spec: str | None) -> Reranker | None:
    """``cross:MODEL`` or ``lm:MODEL`` (a model folder, an embedded name or a run directory); None for None.

    Raises:
        NichetuneError: an unknown kind.
    """
    if spec is None:
        return None
    kind, _, reference = spec.partition(":")
    if kind not in RERANKERS or not reference:
        raise NichetuneError(f"--rerank {spec!r}: give KIND:MODEL with KIND one of {', '.join(RERANKERS)}",
                             hint="e.g. --rerank lm:smollm2-135m-instruct or --rerank cross:path/to/cross-encoder")
    return RERANKERS[kind](reference)

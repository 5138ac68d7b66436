"""Greedy answers of both models against the references: exact match, token F1, ROUGE-L, glossary-term use,
and a paired-bootstrap verdict on ROUGE-L. Chat runs only (a completion run has no questions)."""

from __future__ import annotations

import numpy as np

from ...html_report import esc, table
from ...stats.significance import paired_bootstrap, verdict
from ..generation import generation_metrics, rouge_l, term_metrics
from .base import Evaluator, register_evaluator
from .inputs import GeneratorInputs

KEYS = ["exact_match", "token_f1", "rouge_l", "term_recall", "term_precision", "forbidden_rate", "n"]


def rouge_delta(base_out: list[str], tuned_out: list[str], refs: list[str]) -> dict:
    """Paired bootstrap of the mean ROUGE-L difference (tuned - base) over the same prompts."""
    base_scores = np.array([rouge_l(b, r) for b, r in zip(base_out, refs, strict=True)])
    tuned_scores = np.array([rouge_l(t, r) for t, r in zip(tuned_out, refs, strict=True)])
    return paired_bootstrap(lambda _, scores: float(scores.mean()), np.arange(len(refs)), base_scores, tuned_scores)


def evaluate(x: GeneratorInputs) -> dict | None:
    if not x.chat:
        return None
    refs, out = x.references, x.answers
    result = {k: {**generation_metrics(out[k], refs), **term_metrics(out[k], refs, x.terms, x.forbidden)}
              for k in ("base", "tuned")}
    boot = rouge_delta(out["base"], out["tuned"], refs)
    result["rouge_l_delta"] = boot
    result["verdict"] = verdict("ROUGE-L", boot["delta"], boot["ci_low"], boot["ci_high"], boot["p_value"])
    return result


def scores(section: dict) -> dict[str, float]:
    tuned = section["tuned"]
    out = {"rouge_l": tuned["rouge_l"], "rouge_l_delta": section["rouge_l_delta"]["delta"],
           "token_f1": tuned["token_f1"], "exact_match": tuned["exact_match"], "term_recall": tuned["term_recall"]}
    return {k: v for k, v in out.items() if v is not None}  # no glossary term in the references: no recall


def render(section: dict, report) -> list[tuple[str, str]]:
    rows = [{"model": k, **{n: (round(section[k][n], 4) if isinstance(section[k][n], float) else section[k][n])
                            for n in KEYS}} for k in ("base", "tuned")]
    sentence = f"<p>{esc(section['verdict']['sentence'])}</p>"
    out = [("Answers (greedy decoding)", sentence + table(rows, ["model", *KEYS]))]
    if report.metrics.get("side_by_side"):
        out.append(("Side by side", table(report.metrics["side_by_side"], ["prompt", "reference", "base", "tuned"],
                                          limit=20)))
    return out


EVALUATOR = register_evaluator(Evaluator("answers", "Answers (greedy decoding)", "causal", "rouge_l", True,
                                         evaluate, scores, render))

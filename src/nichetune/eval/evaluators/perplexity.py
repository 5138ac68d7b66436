"""Response perplexity of the tuned and the reference model on identical rows (supervised tokens only)."""

from __future__ import annotations

from ...html_report import table
from .base import Evaluator, register_evaluator
from .inputs import GeneratorInputs


def evaluate(x: GeneratorInputs) -> dict:
    return {"base": x.score(*x.base, x.task, x.rows), "tuned": x.score(*x.tuned, x.task, x.rows)}


def scores(section: dict) -> dict[str, float]:
    base, tuned = section["base"]["perplexity"], section["tuned"]["perplexity"]
    return {"perplexity": tuned, "base_perplexity": base, "relative_change": tuned / base - 1,
            "token_accuracy": section["tuned"]["token_accuracy"]}


def render(section: dict, report) -> list[tuple[str, str]]:
    rows = [{"model": k, **{n: round(v, 4) for n, v in section[k].items()}} for k in ("base", "tuned")]
    return [("Perplexity", table(rows, ["model", "loss", "perplexity", "token_accuracy", "tokens"]))]


EVALUATOR = register_evaluator(Evaluator("perplexity", "Perplexity", "causal", "perplexity", False,
                                         evaluate, scores, render))

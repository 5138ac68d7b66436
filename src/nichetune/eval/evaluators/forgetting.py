"""Forgetting: perplexity on general-domain text (BBC News articles) before and after tuning."""

from __future__ import annotations

from ...html_report import esc, table
from .base import Evaluator, register_evaluator
from .inputs import GeneratorInputs


def evaluate(x: GeneratorInputs) -> dict | None:
    if not x.general_rows:
        return None
    return {"text": x.general_text, "n": len(x.general_rows),
            "base": x.score(*x.base, x.plain_text_task, x.general_rows),
            "tuned": x.score(*x.tuned, x.plain_text_task, x.general_rows)}


def scores(section: dict) -> dict[str, float]:
    base, tuned = section["base"]["perplexity"], section["tuned"]["perplexity"]
    return {"relative_change": tuned / base - 1, "perplexity": tuned, "base_perplexity": base}


def render(section: dict, report) -> list[tuple[str, str]]:
    rows = [{"model": k, "perplexity": round(section[k]["perplexity"], 3)} for k in ("base", "tuned")]
    change = section["tuned"]["perplexity"] / section["base"]["perplexity"] - 1
    return [("Forgetting", f"<p>Perplexity on {esc(section['text'])} ({section['n']} texts) changed by "
             f"{100 * change:+.1f}% after tuning.</p>" + table(rows, ["model", "perplexity"]))]


EVALUATOR = register_evaluator(Evaluator("forgetting", "Forgetting", "causal", "relative_change", False,
                                         evaluate, scores, render))

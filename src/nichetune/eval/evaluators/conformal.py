"""Split-conformal prediction sets (LAC and APS) fitted on validation: coverage and set sizes on the test rows."""

from __future__ import annotations

from ...html_report import table
from ...stats.conformal import SplitConformal, set_metrics
from .base import Evaluator, register_evaluator
from .inputs import ClassifierInputs

METHODS = ("lac", "aps")


def evaluate(x: ClassifierInputs) -> dict:
    out: dict = {"alpha": x.alpha, "fitted_on": "validation"}
    for method in METHODS:
        cp = SplitConformal(x.alpha, method).fit(x.probs_val_cal, x.y_val)
        out[method] = {**set_metrics(cp.predict_sets(x.probs_cal), x.y), "qhat": cp.qhat_}
    return out


def scores(section: dict) -> dict[str, float]:
    """At the stated coverage, smaller sets are better; coverage is reported beside them."""
    out = {}
    for m in METHODS:
        out[f"{m}_coverage"] = section[m]["coverage"]
        out[f"{m}_mean_set_size"] = section[m]["mean_set_size"]
    return out


def render(section: dict, report) -> list[tuple[str, str]]:
    rows = [{"method": k.upper(), "target coverage": 1 - section["alpha"], "coverage": round(section[k]["coverage"], 4),
             "mean set size": round(section[k]["mean_set_size"], 3),
             "singletons": f"{100 * section[k]['singleton_share']:.1f}%"} for k in METHODS]
    return [("Conformal prediction sets", f"<p>Fitted on validation at alpha = {section['alpha']}.</p>"
             + table(rows, list(rows[0])))]


EVALUATOR = register_evaluator(Evaluator("conformal", "Conformal prediction sets", "classification",
                                         "lac_mean_set_size", False, evaluate, scores, render))

"""The tuned classifier against baselines on identical rows: majority class, TF-IDF + logistic regression,
the zero-shot base model and prompted instruct models; paired bootstraps, McNemar and a verdict each."""

from __future__ import annotations

from collections import Counter

import numpy as np

from ...html_report import esc, table
from .base import Evaluator, register_evaluator
from .inputs import ClassifierInputs

ZERO_SHOT_BASE = "zero-shot-base"  # the stable id of the base model's own zero-shot baseline


def baseline_predictions(x: ClassifierInputs) -> list[tuple[str, str, np.ndarray]]:
    """``(stable id, display name, predictions)`` of every baseline that applies."""
    from ..classify_run import base_wording, lexical_baseline, prompted_baselines, zero_shot

    majority = Counter(r["label"] for r in x.train_rows).most_common(1)[0][0]
    lexical = lexical_baseline(x)
    chosen = " (the stronger of two on validation)" if len(lexical.validation) > 1 else ""
    out = [("majority", "majority class", np.full(len(x.y), x.label2id[majority])),
           (f"tfidf-{lexical.kind}", lexical.name + chosen, lexical.predict(x.texts))]
    if x.zero_shot and x.base_reference:
        wording = base_wording(x.base_reference, x.labels, x.train_rows)
        name = "zero-shot base model" + (f" ({wording.describe()})" if wording else "")
        out.append((ZERO_SHOT_BASE, name, zero_shot(x.base_reference, x.texts, x.labels, wording=wording)))
        if x.shots_per_label:
            out += prompted_baselines(x)
    return out


def evaluate(x: ClassifierInputs) -> list[dict]:
    from ..classify_run import compare_predictions

    return [{"id": bid, **compare_predictions(name, x.y, pred, x.pred, x.macro_f1, metric=x.metric)}
            for bid, name, pred in baseline_predictions(x)]


def scores(section: list[dict]) -> dict[str, float]:
    """The tuned model's margin over each baseline on the verdict metric, and over the strongest one."""
    deltas = {f"delta_{c['id']}": c["delta"] for c in section}
    return {"min_delta": min(deltas.values(), default=0.0), **deltas}


def _delta(boot: dict) -> str:
    return f"{boot['delta']:+.3f} ({boot['ci_low']:+.3f} to {boot['ci_high']:+.3f})"


def comparison_row(c: dict, m: dict) -> dict:
    """One baseline comparison as a table row: both metrics' deltas with 95% CIs, and the verdict."""
    f1 = c.get("bootstrap_macro_f1")
    row = {"baseline": c["baseline"], "baseline accuracy": round(c["baseline_accuracy"], 4),
           "tuned accuracy": round(m["accuracy"], 4), "accuracy delta (95% CI)": _delta(c["bootstrap"]),
           "McNemar p": f"{c['mcnemar']['p_value']:.3g}", "baseline macro-F1": round(c["baseline_macro_f1"], 4),
           "tuned macro-F1": round(m["macro_f1"], 4)}
    if f1:
        row["macro-F1 delta (95% CI)"] = _delta(f1)
        row["bootstrap p"] = f"{f1['p_value']:.3g}"
    return {**row, f"verdict on {c.get('metric', 'accuracy')}": c["verdict"]}


def render(section: list[dict], report) -> list[tuple[str, str]]:
    rows = [comparison_row(c, report.metrics["metrics"]) for c in section]
    return [("Against baselines", table(rows, list(rows[0])) if rows else "")]


def simpler_model_warning(section: list[dict]) -> str:
    """The plain statement when the tuned model does not beat a simpler model significantly: the lexical baseline
    (then the better choice), else its own base model untrained (zero-shot: then the training showed no gain)."""
    def metric_and_relation(c: dict) -> tuple[str, str]:
        metric = "macro-F1" if c.get("metric") == "macro_f1" else "accuracy"
        return metric, "is worse than" if c["verdict"] == "worse" else "does not beat"

    for c in section:
        if c["id"].startswith("tfidf-") and c["verdict"] != "better":
            metric, relation = metric_and_relation(c)
            return (f"The tuned model {relation} {c['baseline'].split(' (')[0]} on {metric} with significance: the "
                    "simpler model is the better choice here (as good, trained in seconds, its weights readable).")
    for c in section:
        if c["id"] == ZERO_SHOT_BASE and c["verdict"] != "better":
            metric, relation = metric_and_relation(c)
            return (f"The tuned model {relation} its own base model untrained ({c['baseline']}) on {metric} with "
                    "significance: training showed no gain here. Label more rows, or use the base model zero-shot.")
    return ""


def also_accuracy(c: dict) -> str:
    """Where the verdict is on macro-F1, the accuracy verdict too, so neither is hidden."""
    if c.get("metric", "accuracy") == "accuracy" or "accuracy_sentence" not in c:
        return ""
    return f' <span class="muted">On accuracy: {esc(c["accuracy_sentence"])}</span>'


EVALUATOR = register_evaluator(Evaluator("comparisons", "Against baselines", "classification", "min_delta", True,
                                         evaluate, scores, render))

"""Where the classifier goes wrong: the most confused label pairs, its most confident errors, and the
errors in each slice field's worst slice."""

from __future__ import annotations

import numpy as np

from ...html_report import esc, table
from ...stats.classification import confusion_matrix, most_confused_pairs
from .base import Evaluator, register_evaluator
from .inputs import ClassifierInputs


def evaluate(x: ClassifierInputs) -> dict:
    confidence = x.probs_cal.max(1)
    wrong = np.flatnonzero(x.pred != x.y)
    confident = [{"id": x.rows[i].get("id"), "text": x.texts[i][:300], "true": x.labels[x.y[i]],
                  "predicted": x.labels[x.pred[i]], "confidence": float(confidence[i])}
                 for i in wrong[np.argsort(-confidence[wrong])][:10]]
    cm = confusion_matrix(x.y, x.pred, len(x.labels)).tolist()
    return {"most_confused": most_confused_pairs(cm, x.labels), "most_confident": confident,
            "error_rate": float(len(wrong) / max(1, len(x.y))),
            "confident_error_rate": float(((x.pred != x.y) & (confidence >= 0.9)).mean()) if len(x.y) else 0.0}


def scores(section: dict) -> dict[str, float]:
    return {"error_rate": section["error_rate"], "confident_error_rate": section["confident_error_rate"]}


def worst_slice_errors(report, per_slice: int = 5) -> list[tuple[str, str, list[dict]]]:
    """(field, worst slice, its most confident errors) for every slice field, from eval/predictions.jsonl."""
    from ...data.readers import read_json_lines
    from ...run.paths import RunPaths

    path = RunPaths(report.run_dir).predictions
    if not path.is_file():
        return []
    preds = read_json_lines(path)
    out = []
    for field, result in report.metrics.get("slices", {}).items():
        worst = result.get("worst")
        if worst is None or not any(field in p.get("slices", {}) for p in preds):
            continue
        wrong = [p for p in preds if str(p["slices"].get(field)) == str(worst) and p["predicted"] != p["label"]]
        wrong.sort(key=lambda p: -p["confidence"])
        out.append((field, worst, [{"id": p["id"], "true": p["label"], "predicted": p["predicted"],
                                    "confidence": round(p["confidence"], 3), "text": p["text"][:300]}
                                   for p in wrong[:per_slice]]))
    return out


def render(section: dict, report) -> list[tuple[str, str]]:
    worst = "".join(f"<h3>Errors in the worst {esc(field)} slice: {esc(value)}</h3>"
                    + table(rows, ["id", "true", "predicted", "confidence", "text"])
                    for field, value, rows in worst_slice_errors(report))
    confident = [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in e.items()}
                 for e in section["most_confident"]]
    return [("Errors", table(section["most_confused"], ["true", "predicted", "count"])
             + table(confident, ["id", "true", "predicted", "confidence", "text"]) + worst)]


EVALUATOR = register_evaluator(Evaluator("errors", "Errors", "classification", "error_rate", False,
                                         evaluate, scores, render))

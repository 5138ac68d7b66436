"""Evaluation rows that are copies of training rows (the same text after case, spaces and punctuation): how many,
and the scores without them. A copy the model trained on is scored on memory, not skill, and TF-IDF, which
memorises, gains from it as much as the specialist: on BBC News's old row-by-row split every model got all 20
copied test articles right."""

from __future__ import annotations

import numpy as np

from ...data.split import copied, fingerprint
from ...html_report import esc
from .base import Evaluator, register_evaluator
from .inputs import ClassifierInputs


def evaluate(x: ClassifierInputs) -> dict | None:
    if not x.train_rows:
        return None
    mask = np.array(copied(x.rows, fingerprint(x.train_rows)), dtype=bool)
    section: dict = {"rows": int(mask.sum()), "of": len(mask), "share": float(mask.mean()) if len(mask) else 0.0}
    if mask.any():  # a copy in a named group is the split keeping groups whole; one without, a file that repeats
        grouped = [r.get("group") not in (None, "") for r in x.rows]
        section["in_groups"] = int(np.sum(mask & np.array(grouped, dtype=bool)))
    if mask.any() and not mask.all():
        keep = ~mask
        section.update(accuracy_without=float(np.mean(x.pred[keep] == x.y[keep])),
                       macro_f1_without=x.macro_f1(x.y[keep], x.pred[keep]),
                       accuracy_on_copies=float(np.mean(x.pred[mask] == x.y[mask])))
    return section


def scores(section: dict) -> dict[str, float]:
    """The share of evaluation rows copied from training, and the scores on the others where some are."""
    keys = ("accuracy_without", "macro_f1_without", "accuracy_on_copies")
    return {"share_copied": section["share"], "rows_copied": float(section["rows"]),
            **{k: section[k] for k in keys if k in section}}


def sentence(section: dict) -> str:
    """What the copies mean for the headline numbers, in one or two sentences."""
    if not section["rows"]:
        return "No evaluation row is a copy of a training row."
    text = (f"{section['rows']} of the {section['of']} evaluation rows ({section['share']:.1%}) are copies of "
            "training rows, scored on memory rather than skill")
    if "accuracy_without" in section:
        text += (f" (right on {section['accuracy_on_copies']:.0%} of them); without them accuracy is "
                 f"{section['accuracy_without']:.4f} and macro-F1 {section['macro_f1_without']:.4f}")
    return text + ". " + _advice(section["rows"], section.get("in_groups", 0))


def _advice(rows: int, in_groups: int) -> str:
    """How to be rid of them: a copy under a named group stays where its group went (the split keeps groups whole,
    not copies across groups); a copy without one came in an evaluation file that repeats training rows."""
    parts = []
    if in_groups:
        parts.append(f"{'All' if in_groups == rows else in_groups} of them sit in a named group other than their "
                     "training copy's (the split keeps each group whole, not copies across groups): give each text one "
                     "group, or drop the copies with `nichetune data dedup` before splitting")
    if rows - in_groups:
        parts.append(f"{'All' if not in_groups else rows - in_groups} of them have no group: the evaluation file "
                     "repeats training rows; drop them with `nichetune data dedup`, or let nichetune split one file "
                     "(a text's copies without a group stay in one split)")
    return ". ".join(parts) + "."


def render(section: dict, report) -> list[tuple[str, str]]:
    return [("Copies of training rows", f'<p id="copies">{esc(sentence(section))}</p>')]


EVALUATOR = register_evaluator(Evaluator("copies", "Copies of training rows", "classification", "share_copied",
                                         False, evaluate, scores, render))

"""Per-slice accuracy and macro-F1 with bootstrap intervals (slice fields, text length, synthetic rows)."""

from __future__ import annotations

from ...html_report import esc, table, warnings
from ..plots import slice_plot
from ..slices import accuracy, length_bucket, slice_metrics
from .base import Evaluator, register_evaluator
from .inputs import ClassifierInputs


def evaluate(x: ClassifierInputs) -> dict:
    both = {"accuracy": accuracy, "macro_f1": x.macro_f1}
    out = {f: slice_metrics(x.y, x.pred, [r.get(f) for r in x.rows], min_count=x.min_count, metrics=both)
           for f in x.slice_fields}
    out["length"] = slice_metrics(x.y, x.pred, [length_bucket(t) for t in x.texts], min_count=x.min_count,
                                  metrics=both)
    if any(r.get("synthetic") for r in x.rows):
        out["synthetic"] = slice_metrics(x.y, x.pred, [bool(r.get("synthetic")) for r in x.rows],
                                         min_count=x.min_count)
    return out


def scores(section: dict) -> dict[str, float]:
    """Each field's worst slice and gap (slices with enough rows only); ``largest_gap`` over all fields."""
    out = {}
    for field, result in section.items():
        if result["worst_value"] is not None:
            out[f"worst_{field}"] = result["worst_value"]
        if result["largest_gap"] is not None:
            out[f"gap_{field}"] = result["largest_gap"]
    out["largest_gap"] = max((v for k, v in out.items() if k.startswith("gap_")), default=0.0)
    return out


def render(section: dict, report) -> list[tuple[str, str]]:
    html, flags = "", []
    for field, result in section.items():
        rows = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in result["slices"]]
        gap = result["largest_gap"]
        html += (f"<h3>{esc(field)}</h3><p>Worst slice: <b>{esc(result['worst'])}</b>"
                 + (f"; largest gap {gap:.3f}" if gap is not None else "") + "</p>"
                 + slice_plot(result, field) + table(rows, list(rows[0]), limit=40))
        if result["thin_slices"]:
            flags.append(f"{field}: {len(result['thin_slices'])} slices have fewer than {result['min_count']} rows "
                         f"({', '.join(map(str, result['thin_slices'][:8]))}); their numbers are shown but uncertain")
    return [("Slices", warnings(flags) + html)]


EVALUATOR = register_evaluator(Evaluator("slices", "Slices", "classification", "largest_gap", False,
                                         evaluate, scores, render))

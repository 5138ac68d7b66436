"""Calibration before and after temperature scaling (fitted on validation): ECE, MCE, Brier, NLL, reliability."""

from __future__ import annotations

from ...html_report import table
from ...stats.calibration import calibration_metrics, reliability_bins
from ..plots import reliability_plot
from .base import Evaluator, register_evaluator
from .inputs import ClassifierInputs


def evaluate(x: ClassifierInputs) -> dict:
    return {"raw": calibration_metrics(x.probs, x.y), "temperature_scaled": calibration_metrics(x.probs_cal, x.y),
            "temperature": x.scaler.temperature_, "reliability_raw": reliability_bins(x.probs, x.y, 10),
            "reliability_scaled": reliability_bins(x.probs_cal, x.y, 10)}


def scores(section: dict) -> dict[str, float]:
    return {"ece": section["temperature_scaled"]["ece"], "ece_raw": section["raw"]["ece"],
            "brier": section["temperature_scaled"]["brier"], "nll": section["temperature_scaled"]["nll"],
            "temperature": section["temperature"]}


def render(section: dict, report) -> list[tuple[str, str]]:
    rows = [{"": name, **{k: round(v, 4) for k, v in section[key].items()}}
            for name, key in (("raw", "raw"), (f"temperature {section['temperature']:.2f}", "temperature_scaled"))]
    return [("Calibration", reliability_plot(section) + table(rows, list(rows[0])))]


EVALUATOR = register_evaluator(Evaluator("calibration", "Calibration", "classification", "ece", False,
                                         evaluate, scores, render))

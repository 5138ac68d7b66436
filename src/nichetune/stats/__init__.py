"""Statistics in one place: paired bootstrap and McNemar, calibration and temperature scaling,
split conformal prediction. Plain numpy/scipy on arrays; no model, run or file is touched here,
so evaluation, comparison and (later) monitoring share one tested implementation."""

from .calibration import TemperatureScaler, calibration_metrics, reliability_bins, softmax
from .conformal import SplitConformal, selective_curve, set_metrics, threshold_for_accuracy
from .significance import bootstrap_ci, mcnemar, paired_bootstrap, verdict

__all__ = ["SplitConformal", "TemperatureScaler", "bootstrap_ci", "calibration_metrics", "mcnemar",
           "paired_bootstrap", "reliability_bins", "selective_curve", "set_metrics", "softmax",
           "threshold_for_accuracy", "verdict"]

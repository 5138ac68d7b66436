"""Per-slice metrics with counts and bootstrap intervals, the worst slice and the largest gap.

Slices under ``min_count`` are reported and flagged, never hidden; they are left out of the
worst-slice and gap summaries, whose numbers would be noise.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..stats.significance import bootstrap_ci

Metric = Callable[[np.ndarray, np.ndarray], float]


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float((np.asarray(y_true) == np.asarray(y_pred)).mean()) if len(y_true) else 0.0


def length_bucket(text: str, edges: tuple[int, ...] = (20, 50, 100, 200)) -> str:
    """A slice value from a text's word count: ``<20``, ``20-49``, ... ``200+``."""
    n = len(text.split())
    if n < edges[0]:
        return f"<{edges[0]}"
    for lo, hi in zip(edges, edges[1:], strict=False):
        if lo <= n < hi:
            return f"{lo}-{hi - 1}"
    return f"{edges[-1]}+"


def slice_metrics(y_true, y_pred, groups, *, metrics: dict[str, Metric] | None = None, primary: str = "accuracy",
                  min_count: int = 20, n_boot: int = 500, seed: int = 0) -> dict:
    """Metrics per value of ``groups`` (one value per example)."""
    metrics = metrics or {"accuracy": accuracy}
    y_true, y_pred, groups = np.asarray(y_true), np.asarray(y_pred), np.asarray([str(g) for g in groups])
    rows = []
    for value in sorted(set(groups.tolist())):
        sel = groups == value
        yt, yp = y_true[sel], y_pred[sel]
        row = {"slice": value, "count": int(sel.sum()), "thin": bool(sel.sum() < min_count)}
        for name, fn in metrics.items():
            row[name] = fn(yt, yp)
        lo, hi = bootstrap_ci(lambda idx, yt=yt, yp=yp: metrics[primary](yt[idx], yp[idx]), len(yt), n_boot=n_boot,
                              seed=seed)
        row["ci_low"], row["ci_high"] = lo, hi
        rows.append(row)
    solid = [r for r in rows if not r["thin"]]
    worst = min(solid, key=lambda r: r[primary]) if solid else None
    gap = (max(r[primary] for r in solid) - min(r[primary] for r in solid)) if len(solid) >= 2 else None
    return {"primary": primary, "min_count": min_count, "slices": rows,
            "worst": worst["slice"] if worst else None, "worst_value": worst[primary] if worst else None,
            "largest_gap": gap, "thin_slices": [r["slice"] for r in rows if r["thin"]]}

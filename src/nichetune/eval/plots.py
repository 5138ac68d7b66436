"""Plots for the report: matplotlib figures embedded as PNG data URIs."""

from __future__ import annotations

import base64
import io
from pathlib import Path

from ..run.metrics_log import read_metrics


def png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img alt="plot" src="data:image/png;base64,{data}">'


def figure(width: float = 6.0, height: float = 3.2):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(figsize=(width, height))


def loss_curves(run_dir: Path) -> str:
    lines = read_metrics(run_dir)
    train = [(r["step"], r["loss"]) for r in lines if "loss" in r]
    evals = [(r["step"], r["eval"]["loss"]) for r in lines if "eval" in r]
    before = [(0, r["eval_before"]["loss"]) for r in lines if "eval_before" in r]
    if not train:
        return "<p>No training steps were logged.</p>"
    fig, ax = figure()
    ax.plot(*zip(*train, strict=True), label="train loss", lw=1)
    if evals or before:
        ax.plot(*zip(*(before + evals), strict=True), "o-", label="validation loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    return png(fig)


def reliability_plot(cal: dict) -> str:
    fig, ax = figure(4.5, 4.0)
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    for key, name in (("reliability_raw", "raw"), ("reliability_scaled", f"temperature {cal['temperature']:.2f}")):
        bins = cal[key]
        ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", label=name)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend()
    return png(fig)


def selective_plot(sel: dict) -> str:
    fig, ax = figure(4.5, 3.2)
    ax.plot(sel["curve"]["coverage"], sel["curve"]["accuracy"])
    if sel.get("target"):
        t = sel["target"]
        ax.axhline(t["target_accuracy"], color="grey", ls="--", lw=1)
        ax.plot([t["coverage"]], [t["accuracy"]], "o", color="C3")
    ax.set_xlabel("coverage (share of predictions kept)")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    return png(fig)


MAX_SLICE_BARS = 20


def slice_plot(result: dict, field: str) -> str:
    rows = sorted(result["slices"], key=lambda r: -r["count"])[:MAX_SLICE_BARS]
    hidden = len(result["slices"]) - len(rows)
    fig, ax = figure(6.0, 0.35 * len(rows) + 1.0)
    names = [f"{r['slice']} (n={r['count']})" for r in rows]
    values = [r[result["primary"]] for r in rows]
    err = [[v - r["ci_low"] for v, r in zip(values, rows, strict=True)],
           [r["ci_high"] - v for v, r in zip(values, rows, strict=True)]]
    colors = ["#bbb" if r["thin"] else "C0" for r in rows]
    ax.barh(names, values, xerr=err, color=colors, capsize=3)
    more = f"; the {hidden} smallest slices are in the table" if hidden else ""
    ax.set_xlabel(f"{result['primary']} by {field} (grey: fewer than {result['min_count']} rows{more})")
    ax.set_xlim(0, 1.05)
    ax.invert_yaxis()
    return png(fig)

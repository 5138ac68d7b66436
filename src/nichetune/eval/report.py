"""One self-contained HTML report per run: plots are PNGs (matplotlib) embedded as data URIs."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

from ..html_report import esc, page, table, warnings
from ..train.tracking import read_metrics

# marks the page once every image has decoded; a test reads it back from a real browser
_IMAGE_CHECK = ("<script>window.addEventListener('load',()=>{const imgs=[...document.images];"
                "document.body.dataset.images=imgs.length;"
                "document.body.dataset.imagesOk=imgs.filter(i=>i.complete&&i.naturalWidth>0).length;});</script>")


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img alt="plot" src="data:image/png;base64,{data}">'


def _figure(width: float = 6.0, height: float = 3.2):
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
    fig, ax = _figure()
    ax.plot(*zip(*train, strict=True), label="train loss", lw=1)
    if evals or before:
        ax.plot(*zip(*(before + evals), strict=True), "o-", label="validation loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    return _png(fig)


def reliability_plot(cal: dict) -> str:
    fig, ax = _figure(4.5, 4.0)
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    for key, name in (("reliability_raw", "raw"), ("reliability_scaled", f"temperature {cal['temperature']:.2f}")):
        bins = cal[key]
        ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", label=name)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend()
    return _png(fig)


def selective_plot(sel: dict) -> str:
    fig, ax = _figure(4.5, 3.2)
    ax.plot(sel["curve"]["coverage"], sel["curve"]["accuracy"])
    if sel.get("target"):
        t = sel["target"]
        ax.axhline(t["target_accuracy"], color="grey", ls="--", lw=1)
        ax.plot([t["coverage"]], [t["accuracy"]], "o", color="C3")
    ax.set_xlabel("coverage (share of predictions kept)")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    return _png(fig)


def slice_plot(result: dict, field: str) -> str:
    rows = result["slices"]
    fig, ax = _figure(6.0, 0.35 * len(rows) + 1.0)
    names = [f"{r['slice']} (n={r['count']})" for r in rows]
    values = [r[result["primary"]] for r in rows]
    err = [[v - r["ci_low"] for v, r in zip(values, rows, strict=True)],
           [r["ci_high"] - v for v, r in zip(values, rows, strict=True)]]
    colors = ["#bbb" if r["thin"] else "C0" for r in rows]
    ax.barh(names, values, xerr=err, color=colors, capsize=3)
    ax.set_xlabel(f"{result['primary']} by {field} (grey: fewer than {result['min_count']} rows)")
    ax.set_xlim(0, 1.05)
    ax.invert_yaxis()
    return _png(fig)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def headline(metrics: dict, manifest: dict) -> str:
    m = metrics["metrics"]
    base = manifest["base_model"]["reference"]
    method = manifest["method"]["name"]
    verdicts = "".join(f"<li>{esc(c['sentence'])}</li>" for c in metrics["comparisons"])
    return (f'<p class="headline">{esc(method)} on <b>{esc(base)}</b>, {metrics["n"]} evaluation rows: '
            f'accuracy <b id="headline-accuracy">{m["accuracy"]:.4f}</b>, macro-F1 '
            f'<b id="headline-macro-f1">{m["macro_f1"]:.4f}</b>.</p><ul>{verdicts}</ul>')


def render_classification(run_dir: Path, metrics: dict, manifest: dict) -> str:
    m, cal, conf = metrics["metrics"], metrics["calibration"], metrics["conformal"]
    per_class = [{"label": k, **{n: round(v, 4) if isinstance(v, float) else v for n, v in row.items()}}
                 for k, row in m["per_class"].items()]
    comparison = [{"baseline": c["baseline"], "baseline accuracy": round(c["baseline_accuracy"], 4),
                   "tuned accuracy": round(m["accuracy"], 4), "delta": round(c["bootstrap"]["delta"], 4),
                   "95% CI": f"{c['bootstrap']['ci_low']:+.3f} to {c['bootstrap']['ci_high']:+.3f}",
                   "McNemar p": f"{c['mcnemar']['p_value']:.3g}", "verdict": c["verdict"]}
                  for c in metrics["comparisons"]]
    cal_rows = [{"": name, **{k: round(v, 4) for k, v in cal[key].items()}}
                for name, key in (("raw", "raw"), (f"temperature {cal['temperature']:.2f}", "temperature_scaled"))]
    conf_rows = [{"method": k.upper(), "target coverage": 1 - conf["alpha"], "coverage": round(conf[k]["coverage"], 4),
                  "mean set size": round(conf[k]["mean_set_size"], 3), "singletons": _pct(conf[k]["singleton_share"])}
                 for k in ("lac", "aps")]
    target = metrics["selective"]["target"]
    target_text = (f"Keeping predictions with confidence at least {target['confidence_threshold']:.3f} covers "
                   f"{_pct(target['coverage'])} of inputs at accuracy {_pct(target['accuracy'])}."
                   if target else "No confidence threshold reaches the target accuracy.")
    slice_html = ""
    flags = []
    for field, result in metrics["slices"].items():
        rows = [{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in result["slices"]]
        gap = result["largest_gap"]
        slice_html += (f"<h3>{esc(field)}</h3><p>Worst slice: <b>{esc(result['worst'])}</b>"
                       + (f"; largest gap {gap:.3f}" if gap is not None else "") + "</p>"
                       + slice_plot(result, field) + table(rows, list(rows[0]), limit=40))
        if result["thin_slices"]:
            flags.append(f"{field}: {len(result['thin_slices'])} slices have fewer than {result['min_count']} rows "
                         f"({', '.join(map(str, result['thin_slices'][:8]))}); their numbers are shown but uncertain")
    errors = metrics["errors"]
    sections = [
        ("Headline", headline(metrics, manifest)),
        ("Training", loss_curves(run_dir) + _training_table(manifest)),
        ("Per class", table(per_class, ["label", "precision", "recall", "f1", "support"])),
        ("Against baselines", table(comparison, list(comparison[0])) if comparison else ""),
        ("Calibration", reliability_plot(cal) + table(cal_rows, list(cal_rows[0]))),
        ("Conformal prediction sets", f"<p>Fitted on validation at alpha = {conf['alpha']}.</p>"
                                      + table(conf_rows, list(conf_rows[0]))),
        ("Selective prediction", selective_plot(metrics["selective"]) + f"<p>{esc(target_text)}</p>"),
        ("Slices", warnings(flags) + slice_html),
        ("Errors", table(errors["most_confused"], ["true", "predicted", "count"])
         + table([{k: (round(v, 3) if isinstance(v, float) else v) for k, v in e.items()}
                  for e in errors["most_confident"]], ["id", "true", "predicted", "confidence", "text"])),
        ("Provenance", _provenance(manifest)),
    ]
    return page(f"nichetune report: {run_dir.name}", sections,
                subtitle=f"run {run_dir}").replace("</body>", _IMAGE_CHECK + "</body>")


def _training_table(manifest: dict) -> str:
    r, p = manifest["result"], manifest["parameters"]
    row = {"method": manifest["method"]["name"], "trainable": f"{p['trainable']:,} ({_pct(p['trainable_share'])})",
           "steps": r["steps"], "training s": r["train_seconds"], "final weights": r["final_weights"],
           "precision": manifest["hardware"]["precision"]}
    return table([row], list(row))


def _provenance(manifest: dict) -> str:
    code = manifest["code"]
    rows = [{"item": k, "value": v} for k, v in code.items()]
    rows += [{"item": f"data: {s.get('name') or s.get('path')}", "value": s.get("source", "file")}
             for s in manifest["data"]["sources"]]
    rows += [{"item": "rows", "value": json.dumps(manifest["data"]["rows"])}]
    return table(rows, ["item", "value"])


def render_generation(run_dir: Path, metrics: dict, manifest: dict) -> str:
    ppl = metrics["perplexity"]
    base, tuned = ppl["base"]["perplexity"], ppl["tuned"]["perplexity"]
    head = (f'<p class="headline">{esc(manifest["method"]["name"])} on <b>{esc(manifest["base_model"]["reference"])}'
            f'</b>, {metrics["n"]} evaluation rows: response perplexity <b id="headline-base-perplexity">{base:.3f}'
            f'</b> (base) → <b id="headline-perplexity">{tuned:.3f}</b> (tuned).</p>')
    sections = [("Headline", head), ("Training", loss_curves(run_dir) + _training_table(manifest)),
                ("Perplexity", table([{"model": k, **{n: round(v, 4) for n, v in ppl[k].items()}}
                                      for k in ("base", "tuned")], ["model", "loss", "perplexity", "token_accuracy",
                                                                    "tokens"]))]
    if "answers" in metrics:
        a = metrics["answers"]
        keys = ["exact_match", "token_f1", "rouge_l", "term_recall", "term_precision", "forbidden_rate", "n"]
        rows = [{"model": k, **{n: (round(a[k][n], 4) if isinstance(a[k][n], float) else a[k][n]) for n in keys}}
                for k in ("base", "tuned")]
        sections.append(("Answers (greedy decoding)", f"<p>{esc(a['verdict']['sentence'])}</p>"
                         + table(rows, ["model", *keys])))
        sections.append(("Side by side", table(metrics["side_by_side"], ["prompt", "reference", "base", "tuned"],
                                               limit=20)))
    if "forgetting" in metrics:
        f = metrics["forgetting"]
        rows = [{"model": k, "perplexity": round(f[k]["perplexity"], 3)} for k in ("base", "tuned")]
        change = f["tuned"]["perplexity"] / f["base"]["perplexity"] - 1
        sections.append(("Forgetting", f"<p>Perplexity on {esc(f['text'])} ({f['n']} texts) changed by "
                         f"{100 * change:+.1f}% after tuning.</p>" + table(rows, ["model", "perplexity"])))
    sections.append(("Provenance", _provenance(manifest)))
    return page(f"nichetune report: {run_dir.name}", sections,
                subtitle=f"run {run_dir}").replace("</body>", _IMAGE_CHECK + "</body>")

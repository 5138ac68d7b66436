"""One self-contained HTML report per run: plots are PNGs (matplotlib) embedded as data URIs."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

from ..html_report import esc, page, table, warnings
from ..run.metrics_log import read_metrics

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


MAX_SLICE_BARS = 20


def slice_plot(result: dict, field: str) -> str:
    rows = sorted(result["slices"], key=lambda r: -r["count"])[:MAX_SLICE_BARS]
    hidden = len(result["slices"]) - len(rows)
    fig, ax = _figure(6.0, 0.35 * len(rows) + 1.0)
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
    return _png(fig)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _trained_on(manifest: dict) -> str:
    data = ", ".join(str(s.get("name") or s.get("path")) for s in manifest["data"]["sources"]
                     if s.get("kind") != "transform")
    return f'trained on {esc(data)} ({manifest["data"]["rows"].get("train", "?")} training rows)'


def _also_accuracy(c: dict) -> str:
    """Where the verdict is on macro-F1, the accuracy verdict too, so neither is hidden."""
    if c.get("metric", "accuracy") == "accuracy" or "accuracy_sentence" not in c:
        return ""
    return f' <span class="muted">On accuracy: {esc(c["accuracy_sentence"])}</span>'


def headline(metrics: dict, manifest: dict) -> str:
    m = metrics["metrics"]
    base = manifest["base_model"]["reference"]
    method = manifest["method"]["name"]
    verdicts = "".join(f"<li>{esc(c['sentence'])}{_also_accuracy(c)}</li>" for c in metrics["comparisons"])
    return (f'<p class="headline">{esc(method)} on <b>{esc(base)}</b>, {_trained_on(manifest)}, '
            f'{metrics["n"]} evaluation rows: '
            f'accuracy <b id="headline-accuracy">{m["accuracy"]:.4f}</b>, macro-F1 '
            f'<b id="headline-macro-f1">{m["macro_f1"]:.4f}</b>.</p><ul>{verdicts}</ul>')


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


def _delta(boot: dict) -> str:
    return f"{boot['delta']:+.3f} ({boot['ci_low']:+.3f} to {boot['ci_high']:+.3f})"


def render_classification(run_dir: Path, metrics: dict, manifest: dict) -> str:
    m, cal, conf = metrics["metrics"], metrics["calibration"], metrics["conformal"]
    per_class = [{"label": k, **{n: round(v, 4) if isinstance(v, float) else v for n, v in row.items()}}
                 for k, row in m["per_class"].items()]
    comparison = [comparison_row(c, m) for c in metrics["comparisons"]]
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
    worst_html = "".join(
        f"<h3>Errors in the worst {esc(field)} slice: {esc(value)}</h3>"
        + table(rows, ["id", "true", "predicted", "confidence", "text"])
        for field, value, rows in worst_slice_errors(run_dir, metrics))
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
                  for e in errors["most_confident"]], ["id", "true", "predicted", "confidence", "text"])
         + worst_html),
        *shared_sections(run_dir, metrics),
        ("Provenance", _provenance(manifest)),
    ]
    return page(f"nichetune report: {run_dir.name}", sections,
                subtitle=f"run {run_dir}").replace("</body>", _IMAGE_CHECK + "</body>")


def worst_slice_errors(run_dir: Path, metrics: dict, per_slice: int = 5) -> list[tuple[str, str, list[dict]]]:
    """(field, worst slice, its most confident errors) for every slice field, from eval/predictions.jsonl."""
    path = run_dir / "eval" / "predictions.jsonl"
    if not path.is_file():
        return []
    from ..data.readers import read_json_lines

    preds = read_json_lines(path)
    out = []
    for field, result in metrics["slices"].items():
        worst = result.get("worst")
        if worst is None or not any(field in p.get("slices", {}) for p in preds):
            continue
        wrong = [p for p in preds if str(p["slices"].get(field)) == str(worst) and p["predicted"] != p["label"]]
        wrong.sort(key=lambda p: -p["confidence"])
        out.append((field, worst, [{"id": p["id"], "true": p["label"], "predicted": p["predicted"],
                                    "confidence": round(p["confidence"], 3), "text": p["text"][:300]}
                                   for p in wrong[:per_slice]]))
    return out


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
            f'</b>, {_trained_on(manifest)}, {metrics["n"]} evaluation rows: response perplexity '
            f'<b id="headline-base-perplexity">{base:.3f}'
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
    sections += [*shared_sections(run_dir, metrics), ("Provenance", _provenance(manifest))]
    return page(f"nichetune report: {run_dir.name}", sections,
                subtitle=f"run {run_dir}").replace("</body>", _IMAGE_CHECK + "</body>")


def shared_sections(run_dir: Path, metrics: dict) -> list[tuple[str, str]]:
    """Sections every report has when their data exists: latency, comparisons, expert review, data audit."""
    out = []
    if metrics.get("latency"):
        out.append(("Latency and footprint", latency_section(metrics["latency"], metrics.get("deploy"))))
    compared = sorted((run_dir / "eval").glob("compare-*.json"))
    if compared:
        out.append(("Comparison", "".join(comparison_section(json.loads(p.read_text())) for p in compared)))
    review = run_dir / "eval" / "review.json"
    if review.is_file():
        out.append(("Expert review", review_section(json.loads(review.read_text()))))
    if metrics.get("audit"):
        out.append(("Data audit", audit_section(metrics["audit"])))
    return out


def quality_text(q: dict | None) -> str:
    if not q:
        return "see the zero-shot baseline"
    if "accuracy" in q:
        return f"accuracy {q['accuracy']:.4f} ({q['rows']} rows)"
    return f"perplexity {q['perplexity']:.3f} ({q['rows']} rows)"


def latency_section(results: list[dict], deploy: dict | None = None) -> str:
    ok = [r for r in results if "error" not in r]
    budget = (deploy or {}).get("latency_budget_ms")
    rows = [{"variant": r["variant"], "what": r["note"], "p50 ms": round(r["p50_ms"], 1),
             "p95 ms": round(r["p95_ms"], 1), "p99 ms": round(r["p99_ms"], 1),
             "throughput": f"{r['throughput']:.1f} {r['throughput_unit']} (batch {r['batch_size']})",
             "memory MB": round(r["memory_mb"]), "peak RSS MB": round(r["peak_rss_mb"]),
             "disk MB": round(r["disk_mb"], 1), "quality": quality_text(r["quality"]),
             **({f"p95 within {budget:g} ms": "yes" if r["p95_ms"] <= budget else "no"} if budget else {})}
            for r in ok]
    failed = [f"{r['variant']}: {r['error']}" for r in results if "error" in r]
    unit = ("one request = one text classified" if ok and "new_tokens" not in ok[0]
            else f"one request = {ok[0].get('new_tokens')} tokens generated greedily" if ok else "")
    plot = ""
    if ok:
        fig, ax = _figure(6.0, 0.45 * len(ok) + 1.0)
        p50 = [r["p50_ms"] for r in ok]
        ax.barh([r["variant"] for r in ok], p50, xerr=[[0] * len(ok), [r["p95_ms"] - v for r, v in zip(ok, p50,
                                                                                                       strict=True)]],
                capsize=3)
        ax.set_xlabel("single-request latency, ms (bar: p50, whisker: p95)")
        ax.invert_yaxis()
        plot = _png(fig)
    return (f'<p class="muted">Each variant measured in a fresh process on this machine, one after another; '
            f"{esc(unit)}. Memory is what loading added; peak RSS includes Python and torch.</p>"
            + (warnings(failed) if failed else "") + plot + (table(rows, list(rows[0])) if rows else ""))


def comparison_section(c: dict) -> str:
    rows = [{"metric": name, c["a"]: round(v["a"], 4), c["b"]: round(v["b"], 4), "delta": round(v["delta"], 4),
             "95% CI": f"{v['ci_low']:+.4f} to {v['ci_high']:+.4f}" if "ci_low" in v else ""}
            for name, v in c["metrics"].items()]
    extra = ""
    if c.get("mcnemar"):
        m = c["mcnemar"]
        extra += (f"<p>McNemar: {m['only_candidate_correct']} rows only {esc(c['a'])} got right, "
                  f"{m['only_reference_correct']} only {esc(c['b'])} got right; p = {m['p_value']:.3g}.</p>")
    if c.get("examples"):
        extra += "<p>Where they differ:</p>" + table(c["examples"], list(c["examples"][0]), limit=15)
    return (f"<h3>{esc(c['a'])} vs {esc(c['b'])}</h3><p><b>{esc(c['sentence'])}</b> ({c['n']} identical rows "
            f"from {esc(c['data'])})</p>" + table(rows, ["metric", c["a"], c["b"], "delta", "95% CI"]) + extra)


def review_section(r: dict) -> str:
    rows = [{"grader": g, "graded": v["graded"], "accepted": v["accepted"], "expert accuracy": round(v["accuracy"], 4),
             "95% CI": f"{v['ci_low']:.3f} to {v['ci_high']:.3f}"} for g, v in r["graders"].items()]
    agree = r.get("agreement")
    agree_text = ""
    if agree:
        parts = [f"{k.replace('_', ' ')} {agree[k]:.3f}" for k in ("cohen_kappa", "fleiss_kappa",
                                                                    "krippendorff_alpha_nominal") if k in agree]
        agree_text = (f"<p>Inter-rater agreement on {agree['complete_items']} items graded by everyone: "
                      f"{esc(', '.join(parts))}; the graders disagree on {agree['disagreeing_rows']} items.</p>")
    auto = ""
    if r.get("automatic_accuracy") is not None:
        auto = (f"<p>On the same items the automatic check (prediction equals the reference label) gives "
                f"{r['automatic_accuracy']:.4f}.</p>")
    return (f"<p>{r['items']} items from {esc(r['file'])}, sampled by slice and confidence.</p>"
            + table(rows, list(rows[0])) + agree_text + auto)


def audit_section(a: dict) -> str:
    splits = [{"split": "train", "rows": a["train_rows"]}] + [
        {"split": name.removesuffix(".jsonl"), "rows": s["rows"], "quarantined": s["quarantined"]}
        for name, s in a["splits"].items()]
    leak = [{"split": name.removesuffix(".jsonl"), **v} for name, v in a["leakage"].items()]
    d, pii = a["duplicates"], a["pii"]
    return (warnings(a["warnings"]) + table(splits, ["split", "rows", "quarantined"])
            + f"<p>Train: {d['exact_clusters']} exact and {d['near_clusters']} near-duplicate clusters "
              f"({d['redundant_rows']} redundant rows); PII in {pii['rows_with_pii']} rows "
              f"({esc(', '.join(f'{k}: {v}' for k, v in pii['by_type'].items()) or 'none')}).</p>"
            + "<h3>Overlap with train</h3>" + table(leak, ["split", "leaked_rows", "exact", "near", "shared_groups"])
            + '<p class="muted">Full audit: <code>nichetune data audit RUN/data/train.jsonl --test '
              "RUN/data/test.jsonl</code></p>")

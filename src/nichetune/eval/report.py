"""One self-contained HTML report per run: plots are PNGs (matplotlib) embedded as data URIs."""

from __future__ import annotations

import json
from pathlib import Path

from ..html_report import esc, page, table, warnings
from ..run.paths import RunPaths
from .evaluators import ReportContext, evaluators_for
from .evaluators.baselines import also_accuracy, simpler_model_warning
from .plots import figure, loss_curves, png

# marks the page once every image has decoded; a test reads it back from a real browser
_IMAGE_CHECK = ("<script>window.addEventListener('load',()=>{const imgs=[...document.images];"
                "document.body.dataset.images=imgs.length;"
                "document.body.dataset.imagesOk=imgs.filter(i=>i.complete&&i.naturalWidth>0).length;});</script>")


def _trained_on(manifest) -> str:
    data = ", ".join(str(s.get("name") or s.get("path")) for s in manifest.data.sources
                     if s.get("kind") != "transform")
    return f'trained on {esc(data)} ({manifest.data.rows.get("train", "?")} training rows)'


def _classifier_headline(metrics: dict, manifest) -> str:
    m = metrics["metrics"]
    verdicts = "".join(f"<li>{esc(c['sentence'])}{also_accuracy(c)}</li>" for c in metrics["comparisons"])
    warning = simpler_model_warning(metrics["comparisons"])
    if warning:
        verdicts += f'<li id="simpler-is-better"><b>{esc(warning)}</b></li>'
    return (f'<p class="headline">{esc(manifest.method_name)} on <b>{esc(manifest.base_model.reference)}</b>, '
            f'{_trained_on(manifest)}, {metrics["n"]} evaluation rows: '
            f'accuracy <b id="headline-accuracy">{m["accuracy"]:.4f}</b>, macro-F1 '
            f'<b id="headline-macro-f1">{m["macro_f1"]:.4f}</b>.{_text_seen(metrics.get("inputs"))}</p>'
            f'<ul>{verdicts}</ul>')


def _text_seen(inputs: dict | None) -> str:
    """How much of the evaluation texts the classifier read, when its window cut any."""
    if not inputs or not inputs["texts_cut"]:
        return ""
    from ..truncation import how_read

    return (f' <span id="text-seen">It read <b>{inputs["token_share"]:.0%}</b> of their tokens: '
            f'{inputs["texts_cut"]:.0%} of the texts are longer than its window, and it reads those '
            f'{esc(how_read(inputs))}.</span>')


def _generator_headline(metrics: dict, manifest) -> str:
    ppl = metrics["perplexity"]
    base, tuned = ppl["base"]["perplexity"], ppl["tuned"]["perplexity"]
    return (f'<p class="headline">{esc(manifest.method_name)} on <b>{esc(manifest.base_model.reference)}'
            f'</b>, {_trained_on(manifest)}, {metrics["n"]} evaluation rows: response perplexity '
            f'<b id="headline-base-perplexity">{base:.3f}'
            f'</b> (base) → <b id="headline-perplexity">{tuned:.3f}</b> (tuned).</p>')


HEADLINES = {"classification": _classifier_headline, "causal": _generator_headline}


def _training_table(manifest) -> str:
    r, p = manifest.result, manifest.parameters
    row = {"method": manifest.method_name, "trainable": f"{p.trainable:,} ({100 * p.trainable_share:.1f}%)",
           "steps": r.steps, "training s": r.train_seconds, "final weights": r.final_weights,
           "precision": manifest.hardware.precision}
    return table([row], list(row))


def _provenance(manifest) -> str:
    rows = [{"item": k, "value": v} for k, v in manifest.code.items()]
    rows += [{"item": f"data: {s.get('name') or s.get('path')}", "value": s.get("source", "file")}
             for s in manifest.data.sources]
    rows += [{"item": "rows", "value": json.dumps(manifest.data.rows)}]
    return table(rows, ["item", "value"])


def render(run_dir: Path, metrics: dict, manifest) -> str:
    """The report page: headline and training, then every evaluator's sections in order, then the shared ones."""
    report = ReportContext(Path(run_dir), metrics, manifest)
    sections = [("Headline", HEADLINES[manifest.head](metrics, manifest)),
                ("Training", loss_curves(report.run_dir) + _training_table(manifest))]
    for ev in evaluators_for(manifest.head):
        if ev.id in metrics:
            sections += ev.render(metrics[ev.id], report)
    sections += [*shared_sections(report.run_dir, metrics), ("Provenance", _provenance(manifest))]
    return page(f"nichetune report: {report.run_dir.name}", sections,
                subtitle=f"run {report.run_dir}").replace("</body>", _IMAGE_CHECK + "</body>")


def shared_sections(run_dir: Path, metrics: dict) -> list[tuple[str, str]]:
    """Sections every report has when their data exists: latency, comparisons, expert review, data audit."""
    out = []
    if metrics.get("latency"):
        out.append(("Latency and footprint", latency_section(metrics["latency"], metrics.get("deploy"))))
    paths = RunPaths(run_dir)
    compared = paths.comparisons()
    if compared:
        out.append(("Comparison", "".join(comparison_section(json.loads(p.read_text())) for p in compared)))
    review = paths.review
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
    from .latency import measured

    ok = measured(results)
    budget = (deploy or {}).get("latency_budget_ms")
    rows = [{"variant": r["variant"], "what": r["note"], "p50 ms": round(r["p50_ms"], 1),
             "p95 ms": round(r["p95_ms"], 1), "p99 ms": round(r["p99_ms"], 1),
             "throughput": f"{r['throughput']:.1f} {r['throughput_unit']} (batch {r['batch_size']})",
             "memory MB": round(r["memory_mb"]), "peak RSS MB": round(r["peak_rss_mb"]),
             "disk MB": round(r["disk_mb"], 1), "quality": quality_text(r["quality"]),
             **({f"p95 within {budget:g} ms": "yes" if r["p95_ms"] <= budget else "no"} if budget else {})}
            for r in ok]
    failed = [f"{r['variant']}: {r['error']}" for r in results if "error" in r] + [
        f"{r['variant']}: not measured: {r['skipped']}" for r in results if "skipped" in r]
    unit = ("one request = one text classified" if ok and "new_tokens" not in ok[0]
            else f"one request = {ok[0].get('new_tokens')} tokens generated greedily" if ok else "")
    plot = ""
    if ok:
        fig, ax = figure(6.0, 0.45 * len(ok) + 1.0)
        p50 = [r["p50_ms"] for r in ok]
        ax.barh([r["variant"] for r in ok], p50, xerr=[[0] * len(ok), [r["p95_ms"] - v for r, v in zip(ok, p50,
                                                                                                       strict=True)]],
                capsize=3)
        ax.set_xlabel("single-request latency, ms (bar: p50, whisker: p95)")
        ax.invert_yaxis()
        plot = png(fig)
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

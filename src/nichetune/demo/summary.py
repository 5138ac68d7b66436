"""The demo's summary table (one row per trained run) and the index page linking both reports."""

from __future__ import annotations

import os
from pathlib import Path

from ..eval.classify_run import VERDICT_METRICS
from ..eval.evaluators.baselines import ZERO_SHOT_BASE
from ..html_report import esc, page, table

COLUMNS = ["domain", "run", "method", "trainable parameters", "train time", "headline metric", "verdict vs base"]


def summary_rows(medical: dict, jargon: dict) -> list[dict]:
    rows = []
    metrics, vs_base = medical.get("metrics"), medical.get("vs_base")
    for name, run in medical["runs"].items():
        manifest = run["manifest"]
        test = manifest.result.test or {}
        nan = float("nan")
        headline = f"macro-F1 {test.get('macro_f1', nan):.3f} (accuracy {test.get('accuracy', nan):.3f})"
        verdict = "not compared"
        if isinstance(metrics, dict) and name == medical.get("evaluated"):
            primary = metrics["primary"]
            headline = (f"{VERDICT_METRICS.get(primary['name'], primary['name'])} {primary['value']:.3f} "
                        f"(accuracy {metrics['metrics']['accuracy']:.3f})")
            verdict = _base_verdict([c for c in metrics["comparisons"] if c.get("id") == ZERO_SHOT_BASE])
        elif isinstance(vs_base, dict) and name in vs_base:
            verdict = _base_verdict([vs_base[name]])
        rows.append(_row("drug reviews", name, run["label"], manifest, headline, verdict))
    metrics = jargon.get("metrics")
    for name, run in jargon["runs"].items():
        headline, verdict = "held-out perplexity", "not compared"
        if isinstance(metrics, dict):
            ppl = metrics["perplexity"]
            base, tuned = ppl["base"]["perplexity"], ppl["tuned"]["perplexity"]
            headline = f"held-out perplexity {tuned:.2f}"
            verdict = f"{'lower' if tuned < base else 'not lower'} than base ({base:.2f}, {tuned / base - 1:+.0%})"
        rows.append(_row("computing jargon", name, run["label"], run["manifest"], headline, verdict))
    return rows


def _base_verdict(comparisons: list[dict]) -> str:
    """An eval baseline comparison or a `nichetune compare` result, as "verdict (delta, p)"."""
    if not comparisons:
        return "not compared"
    c = comparisons[0]
    return f"{c['verdict']} ({c['delta']:+.3f}, p = {c['p_value']:.2g})"


def _row(domain: str, name: str, label: str, manifest, headline: str, verdict: str) -> dict:
    p = manifest.parameters
    return {"domain": domain, "run": name, "method": label,
            "trainable parameters": f"{p.trainable:,} ({p.trainable_share:.1%})",
            "train time": f"{manifest.result.train_seconds:.0f} s", "headline metric": headline,
            "verdict vs base": verdict}


def markdown_table(rows: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(str(r[c]) for c in COLUMNS) + " |" for r in rows]
    return "\n".join(lines)


EXPORT_COLUMNS = ["model", "format", "parity", "metric", "change (95% CI)", "max logit diff", "size MB", "p50 ms"]


def export_rows(exports: dict) -> list[dict]:
    """One row per export the demo made, with its parity evidence."""
    rows = []
    for model, by_format in exports.items():
        if not isinstance(by_format, dict):
            continue
        for fmt, p in by_format.items():
            rows.append({"model": model, "format": fmt, "parity": p["status"],
                         "metric": f"{p['metric']} {p['export']:.4f}",
                         "change (95% CI)": f"{100 * p['change']:+.2f} pt ({100 * p['ci_low']:+.2f} to "
                                            f"{100 * p['ci_high']:+.2f})",
                         "max logit diff": f"{p['max_logit_diff']:.1e}", "size MB": round(p["disk_mb"], 1),
                         "p50 ms": round(p["p50_ms"], 1)})
    return rows


SERVED_COLUMNS = ["model", "review (held out)", "true label", "label", "confidence", "prediction set", "abstain"]


def served_html(served: dict | None) -> str:
    """The demo's questions to the server and the answers it gave."""
    if not served:
        return "<p class='muted'>(the serving step did not run)</p>"
    chats = "".join(f"<li><b>{esc(c['question'])}</b><br>{esc(c['answer'].strip())}</li>" for c in served["chat"])
    rows = [{"model": model, "review (held out)": text[:120] + ("..." if len(text) > 120 else ""), "true label": true,
             "label": a["label"], "confidence": round(a["confidence"], 3),
             "prediction set": ", ".join(a["prediction_set"] or []), "abstain": "yes" if a["abstain"] else "no"}
            for model, answers in served["classify"].items()
            for text, true, a in zip(served["texts"], served["true_labels"], answers, strict=True)]
    return (f"<p>Targets: {esc(', '.join(served['targets']))}</p><ul>{chats}</ul>"
            + table(rows, SERVED_COLUMNS))


def retrieval_html(retrieved: dict | None, link) -> str:
    """What retrieval adds: the index's metrics per mode, each model's answers with and without it, the verdicts,
    and three cited answers with their checks."""
    evaluation = (retrieved or {}).get("eval")
    if not evaluation:
        return "<p class='muted'>(the retrieval steps did not run)</p>"
    r = evaluation["retrieval"]
    k = r["k"]
    modes = [{"mode": mode, f"recall@{k}": round(m["recall"], 3), "MRR": round(m["mrr"], 3),
              f"nDCG@{k}": round(m["ndcg"], 3)} for mode, m in r["means"].items()]
    names = ["exact_match", "token_f1", "rouge_l", "citation_recall", "citation_precision"]
    answers = [{"model": model, "answers": who, **{n: _rounded(a["means"][key].get(n)) for n in names}}
               for model, a in evaluation["answers"].items()
               for who, key in (("without retrieval", "without"), ("with retrieval", "with"))]
    said = [*(v["sentence"] for v in r["verdicts"].values()),
            *(a["summary"] for a in evaluation["answers"].values()), evaluation["comparison"]["sentence"]]
    asked = retrieved["asked"]["answers"] if isinstance(retrieved.get("asked"), dict) else []
    cited = "".join(
        f"<li><b>{esc(x['question'])}</b><br>{esc(x['answer'].strip())}<br><span class='muted'>sources: "
        f"{esc(', '.join(x['sources']))}; "
        f"{sum(c['supported'] for c in x['checks'])} of {len(x['checks'])} checks supported</span></li>"
        for x in asked)
    return (f"<p>{link(retrieved['report'], 'The retrieval report')}: {r['questions']} questions about held-out "
            f"terms whose definitions are only in the index.</p>"
            + table(modes, ["mode", f"recall@{k}", "MRR", f"nDCG@{k}"])
            + table(answers, ["model", "answers", *names]) + "".join(f"<p>{esc(x)}</p>" for x in said)
            + (f"<ul>{cited}</ul>" if cited else ""))


def _rounded(value):
    return "" if value is None else round(value, 3)


def watched_html(watched: dict | None, link) -> str:
    """What monitoring saw: the drift verdict and alarms, the shadow's agreement, the A/B verdict and promotion."""
    drift, ab = (watched or {}).get("drift"), (watched or {}).get("ab")
    if not drift:
        return "<p class='muted'>(the monitoring steps did not run)</p>"
    alarms = [{"window": a["phase"], "slice": a["slice"],
               "check": a["check"], "n": a["n"], "effect": round(a["effect"], 3),
               "p (Holm)": round(a["p_adjusted"], 4)} for a in drift["alarms"]]
    shadow = drift["shadow"]
    parts = [f"<p>{link(watched['page'], 'The drift page')}: <b>{esc(drift['summary'])}</b></p>",
             table(alarms, ["window", "slice", "check", "n", "effect", "p (Holm)"], limit=15),
             f"<p>Shadow challenger (full fine-tuning): {shadow['pairs']} answers in the background, "
             f"{shadow['agreement']:.0%} agreement with the champion; accuracy from feedback "
             f"{shadow['accuracy']['shadow']:.3f} against {shadow['accuracy']['champion']:.3f}.</p>"]
    if ab:
        moved = ab["promoted"]
        parts.append(f"<p>A/B: <b>{esc(ab['sentence'])}</b> "
                     + (f"Promoted: champion {moved['from_version']} &rarr; {moved['to_version']}.</p>" if moved
                        else "Nothing promoted.</p>"))
    return "".join(parts)


def index_html(out: Path, rows: list[dict], medical: dict, jargon: dict, failures: list[dict], commands: list[dict],
               seconds: float, mode: str, shipped: dict | None = None, served: dict | None = None,
               retrieved: dict | None = None, watched: dict | None = None) -> str:
    def link(path, text: str) -> str:
        path = Path(path)
        if not path.is_file():
            return f"{esc(text)} <span class='muted'>(not written: its step failed)</span>"
        return f'<a href="{esc(os.path.relpath(path, out))}">{esc(text)}</a>'

    reports = (f"<ul><li>{link(medical['report'], 'Drug reviews: the recommended classifier')} — accuracy, "
               "calibration, conformal sets, condition slices, baselines, latency, comparisons</li>"
               f"<li>{link(jargon['report'], 'Computing jargon: the SmolLM2 LoRA')} — perplexity, term use, "
               "forgetting, answers side by side</li>"
               f"<li>{link(out / 'audit.html', 'Data audit of the drug reviews')}</li>"
               f"<li>{link(out / 'recipes' / 'drug-reviews-recommended.yaml', 'The recommended recipe')} "
               "(every setting with the rule that chose it)</li></ul>")
    problems = ("<p class='ok'>Every step finished.</p>" if not failures else
                "".join(f"<div class='warn'><b>{esc(f['step'])}</b> failed: {esc(f['error'])}<br>"
                        f"how to fix: {esc(f['fix'])}</div>" for f in failures))
    cmd = "".join(f"<li>{esc(c['step'])}<br><code>{esc(c['command'])}</code></li>" for c in commands)
    caveat = ("<p class='warn'>Quick mode trains on a few hundred rows for a few steps at short lengths: it checks "
              "that every step of the lifecycle works, not how good the models get. <code>make demo</code> runs the "
              "full version.</p>" if mode == "quick" else "")
    shipping = ""
    if shipped:
        registry = shipped.get("registry")
        cards = "".join(f"<li>{link(path, f'Model card: {ref}')}</li>" for ref, path in registry["cards"].items()) \
            if isinstance(registry, dict) else ""
        left_out = "".join(f"<li>{esc(model)} {esc(fmt)}: {esc(why)}</li>"
                           for model, by_format in shipped.get("left_out", {}).items()
                           for fmt, why in by_format.items())
        shipping = (table(export_rows(shipped.get("exports", {})), EXPORT_COLUMNS)
                    + (f"<p>Not exported on this machine:</p><ul>{left_out}</ul>" if left_out else "")
                    + (f"<ul>{cards}</ul>" if cards else "<p class='muted'>(the registry step did not run)</p>"))
    return page("nichetune demo", [
        ("Reports", caveat + reports),
        ("Summary", table(rows, COLUMNS)),
        ("Shipped: exports with parity evidence, registry, model cards", shipping),
        ("Served: the champions answering through the OpenAI-compatible API", served_html(served)),
        ("Retrieval: what an index of documents adds to the tuned model", retrieval_html(retrieved, link)),
        ("Watched: drift, a shadow challenger, an A/B test and a promotion", watched_html(watched, link)),
        ("Problems", problems),
        ("The commands behind each step", f"<ol>{cmd}</ol>"),
    ], subtitle=f"{mode} demo, {seconds / 60:.1f} minutes on this machine")

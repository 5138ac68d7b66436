"""A model card for compliance review, from what the registry holds for a version: intended use, training
data with provenance and licence/consent notes, PII handling, evaluation evidence (baselines, calibration,
conformal sets, slices, latency, export parity), known limits and lineage. Markdown, and HTML."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from ..html_report import esc, page
from ..run.evaluation import read_eval_metrics
from ..run.paths import RunPaths
from .lineage import lineage, lineage_text


def _read(path: Path):
    if not path.is_file():
        return None
    return yaml.safe_load(path.read_text()) if path.suffix == ".yaml" else json.loads(path.read_text())


def _sources(record: RunPaths) -> list[str]:
    out = []
    for path in sorted(record.data.glob("*.manifest.json")):
        data = json.loads(path.read_text())
        for source in data.get("sources", []):
            notes = ", ".join(f"{k}: {v}" for k, v in source.items() if k in ("licence", "consent") and v)
            out.append(f"{source.get('name') or source.get('path')} ({notes or 'no licence or consent recorded'})")
        for step in data.get("lineage", []):
            for dataset in step.get("params", {}).get("datasets", []):
                out.append(f"{dataset.get('name')}: {dataset.get('source', 'source not recorded')}")
    return sorted(set(out))


def card_sections(row: dict) -> list[tuple[str, list[str]]]:
    """(heading, lines) of the card."""
    folder = Path(row["path"])
    record = RunPaths(folder / "run")  # the run's record, kept in the run's layout
    run = _read(record.manifest) or {}
    recipe = _read(record.recipe) or {}
    metrics = read_eval_metrics(record.eval_metrics) if record.eval_metrics.is_file() else {}
    parity = _read(folder / "model" / "parity.json")
    labels = run.get("labels")
    task = row["task"]
    use = row.get("note") or (f"Classify text into {', '.join(labels)}." if labels else
                              f"Generate text in the domain it was tuned on ({task}).")
    sections = [("Model", [f"{row['name']}@{row['version']}: {row['kind']} ({row['format']}), method "
                           f"{row['method']} on {row['base_model']}",
                           f"aliases: {', '.join(row.get('aliases', [])) or 'none'}; registered {row['created_at']} "
                           f"by {row['created_by']}"]),
                ("Intended use", [use, "Not for decisions outside the domain and population of its training data."])]
    data = run.get("data", {})
    rows = data.get("rows", {})
    sections.append(("Training data", [f"rows: {json.dumps(rows)}", *(_sources(record) or ["sources not recorded"])]))
    pii = (recipe.get("data") or {}).get("pii", "keep")
    audit = (metrics.get("audit") or {}).get("pii")
    sections.append(("PII handling", [f"data.pii: {pii}" + (" (detected PII replaced by [TYPE] before training)"
                                                            if pii == "mask" else " (text used as given)"),
                                      *([f"audit of the splits: PII in {audit['rows_with_pii']} rows "
                                         f"({json.dumps(audit['by_type'])})"] if audit else [])]))
    evidence, limits = [], []
    if metrics.get("primary"):
        p = metrics["primary"]
        evidence.append(f"{p['name']} {p['value']:.4f} on {metrics.get('n')} held-out rows ({metrics.get('data')})")
    for c in metrics.get("comparisons", []):
        evidence.append(f"vs {c['baseline']}: {c['sentence']}")
        if c.get("verdict") != "better":
            limits.append(f"not shown better than {c['baseline']} ({c['verdict']})")
    cal = metrics.get("calibration")
    if cal:
        evidence.append(f"calibration: ECE {cal['raw']['ece']:.3f} raw, {cal['temperature_scaled']['ece']:.3f} after "
                        f"temperature {cal['temperature']:.2f}")
    conf = metrics.get("conformal")
    if conf:
        evidence.append(f"conformal sets (LAC) at alpha {conf['alpha']}: coverage {conf['lac']['coverage']:.3f}, "
                        f"mean size {conf['lac']['mean_set_size']:.2f}")
    for field, result in (metrics.get("slices") or {}).items():
        if result.get("worst") is not None:
            evidence.append(f"worst {field} slice: {result['worst']} ({result['primary']} {result['worst_value']:.3f})")
        if result.get("thin_slices"):
            limits.append(f"{len(result['thin_slices'])} {field} slices have too few rows to judge")
    if metrics.get("perplexity"):
        ppl = metrics["perplexity"]
        evidence.append(f"response perplexity {ppl['base']['perplexity']:.2f} (base) -> "
                        f"{ppl['tuned']['perplexity']:.2f} (tuned)")
    for r in metrics.get("latency", []):
        if "p50_ms" in r:
            evidence.append(f"latency {r['variant']}: p50 {r['p50_ms']:.1f} ms, {r['disk_mb']:.1f} MB")
    if parity:
        evidence.append(f"export parity ({row['format']}): {parity['status']}, {parity['metric']} change "
                        f"{100 * parity['change']:+.2f} points (95% CI {100 * parity['ci_low']:+.2f} to "
                        f"{100 * parity['ci_high']:+.2f}), max logit difference {parity['max_logit_diff']:.2e}")
    if not metrics:
        limits.append("the run was never evaluated (`nichetune eval`): no evidence beyond training metrics")
    sections.append(("Evaluation evidence", evidence or ["none recorded"]))
    sections.append(("Known limits", limits or ["none flagged by the evaluation; review the slices"]))
    sections.append(("Lineage", lineage_text(lineage(row)).splitlines()))
    return sections


def card_markdown(row: dict) -> str:
    parts = [f"# Model card: {row['name']}@{row['version']}", ""]
    for heading, lines in card_sections(row):
        parts += [f"## {heading}", "", *(f"- {line}" if heading != "Lineage" else f"    {line}" for line in lines), ""]
    return "\n".join(parts)


def card_html(row: dict) -> str:
    sections = []
    for heading, lines in card_sections(row):
        body = ("<pre>" + esc("\n".join(lines)) + "</pre>" if heading == "Lineage"
                else "<ul>" + "".join(f"<li>{esc(line)}</li>" for line in lines) + "</ul>")
        sections.append((heading, body))
    return page(f"Model card: {row['name']}@{row['version']}", sections, subtitle=f"registry version {row['path']}")

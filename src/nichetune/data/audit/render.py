"""The audit as an HTML page and as a terminal summary."""

from __future__ import annotations

from ... import html_report as h


def audit_html(report: dict) -> str:
    ov, ln, dup, pii, vocab = (report[k] for k in ("overview", "lengths", "duplicates", "pii", "vocabulary"))
    sections = [("Warnings", h.warnings(report["warnings"]))]
    overview = h.table([{"rows": ov["rows"], "task": ov["task"], "classes": ov.get("classes", ""),
                         "imbalance ratio": ov.get("imbalance_ratio", ""),
                         "quarantined": report["validation"]["quarantined"]}],
                       ["rows", "task", "classes", "imbalance ratio", "quarantined"])
    if ov.get("labels"):
        overview += h.bar_chart(ov["labels"].items(), title="rows per label")
    sections.append(("Overview", overview))
    if ln.get("count"):
        edges = ln["histogram_edges"]
        hist = [(f"{edges[i]:.0f}-{edges[i + 1]:.0f}", c) for i, c in enumerate(ln["histogram"])]
        sections.append(("Lengths", h.table([ln], ["unit", "min", "p50", "p90", "p99", "max", "max_length",
                                                    "truncated_share"]) + h.bar_chart(hist, title="length histogram")))
    dup_rows = [{"kind": c["kind"], "size": c["size"], "ids": ", ".join(c["ids"][:8]),
                 "labels": ", ".join(c.get("labels", [])), "min jaccard": c["min_jaccard"]} for c in dup["clusters"]]
    sections.append(("Duplicates", f"<p>{dup['exact_clusters']} exact and {dup['near_clusters']} near-duplicate "
                     f"clusters (Jaccard &ge; {dup['threshold']}); {len(dup['conflicting_label_clusters'])} with "
                     f"conflicting labels.</p>" + h.table(dup_rows, ["kind", "size", "ids", "labels", "min jaccard"],
                                                          limit=100)))
    leak_html = ""
    for name, leak in report["leakage"].items():
        shared = [{"group": g, "ids": ", ".join(ids[:10])} for g, ids in leak["shared_groups"].items()]
        leak_html += (f"<h3>train vs {h.esc(name)}: {leak['leaked_rows']} leaked rows</h3>"
                      + f"<p><b>Exact copies</b> ({len(leak['exact'])})</p>"
                      + h.table(leak["exact"], ["train_id", "other_id"], 50)
                      + f"<p><b>Near copies</b> ({len(leak['near'])})</p>"
                      + h.table(leak["near"], ["train_id", "other_id", "jaccard"], 50)
                      + f"<p><b>Groups in both splits</b> ({len(shared)}): the ids are the {h.esc(name)} rows</p>"
                      + h.table(shared, ["group", "ids"], 50))
    sections.append(("Leakage", leak_html or '<p class="muted">no other split given (--test FILE)</p>'))
    pii_rows = [{"type": t, "findings": v["findings"], "rows": v["rows"], "masked samples": " | ".join(
        v["masked_samples"])} for t, v in pii["by_type"].items()]
    sections.append(("PII", f"<p>{pii['rows_with_pii']} rows ({pii['share_of_rows']:.1%}) contain PII.</p>"
                     + h.table(pii_rows, ["type", "findings", "rows", "masked samples"])))
    voc = h.table(vocab["top_terms"][:25], ["term", "doc_freq", "pieces"])
    voc += "<h3>Jargon: terms the tokenizer splits into 3+ pieces</h3>" + h.table(
        vocab["jargon_terms"], ["term", "doc_freq", "pieces"], 25)
    for label, terms in vocab.get("distinctive_by_label", {}).items():
        voc += f"<p><b>{h.esc(label)}</b>: {h.esc(', '.join(terms))}</p>"
    for name, cov in vocab["coverage"].items():
        voc += (f"<p>{h.esc(name)}: {cov['term_occurrences_seen_in_train']:.1%} of term occurrences seen in train; "
                f"unseen: {h.esc(', '.join(cov['top_unseen_terms'][:12]))}</p>")
    sections.append(("Vocabulary", voc))
    sl = ""
    for key, s in report["slices"].items():
        sl += (f"<h3>{h.esc(key)}: {s['distinct']} values, {len(s['under_minimum'])} under {s['minimum']}</h3>"
               + h.bar_chart(list(s["values"].items())[:25], title=f"rows per {key}"))
    sections.append(("Slices", sl or '<p class="muted">no slice fields (--slice-field F)</p>'))
    ag = report["agreement"]
    sections.append(("Annotator agreement", h.table([{k: v for k, v in ag.items() if k != "disagreeing_ids"}],
                     [k for k in ag if k != "disagreeing_ids"]) if ag else '<p class="muted">one label column</p>'))
    return h.page(f"Data audit: {report['file']}", sections,
                  subtitle=f"{report['task']} · {report['overview']['rows']} rows · {report['seconds']} s")


def audit_text(report: dict) -> str:
    ov, ln, dup, pii = report["overview"], report["lengths"], report["duplicates"], report["pii"]
    quarantined = report["validation"]["quarantined"]
    lines = [f"{report['file']}: {ov['rows']} rows ({report['task']}), {quarantined} quarantined"]
    if ov.get("labels"):
        lines.append("labels: " + ", ".join(f"{k}={v}" for k, v in ov["labels"].items())
                     + f"  (imbalance ratio {ov['imbalance_ratio']})")
    if ln.get("count"):
        lines.append(f"length ({ln['unit']}): p50 {ln['p50']:.0f}, p90 {ln['p90']:.0f}, max {ln['max']}; "
                     f"{ln['truncated_share']:.1%} over {ln['max_length']}")
    lines.append(f"duplicates: {dup['exact_clusters']} exact, {dup['near_clusters']} near clusters, "
                 f"{len(dup['conflicting_label_clusters'])} with conflicting labels")
    for name, leak in report["leakage"].items():
        lines.append(f"leakage train->{name}: {len(leak['exact'])} exact, {len(leak['near'])} near, "
                     f"{len(leak['shared_groups'])} shared groups")
    lines.append("PII: " + (", ".join(f"{t}={v['findings']}" for t, v in pii["by_type"].items()) or "none"))
    for key, s in report["slices"].items():
        lines.append(f"slice {key}: {s['distinct']} values, {len(s['under_minimum'])} under {s['minimum']} rows")
    if report["agreement"]:
        ag = report["agreement"]
        lines.append("agreement: " + ", ".join(f"{k}={ag[k]}" for k in ("cohen_kappa", "fleiss_kappa",
                                                                          "krippendorff_alpha_nominal") if k in ag))
    lines += [f"WARNING: {w}" for w in report["warnings"]]
    return "\n".join(lines)

"""``nichetune data audit|pii|dedup|split|augment|lineage``: know the data, clean it, prove its origin."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .output import print_json, print_table


def _provenance_options(p) -> None:
    p.add_argument("--licence", help="licence of the source data, recorded in the output's manifest")
    p.add_argument("--consent", help="consent / usage notes for the source data, recorded in the manifest")


def add_verbs(verbs) -> None:
    from .data_cmd import add_field_options, add_quarantine_option

    p = verbs.add_parser("audit", help="one report: balance, lengths, duplicates, leakage, PII, vocabulary, slices",
                         description="Audit a dataset (and optionally its other splits) and write JSON and HTML.")
    p.add_argument("file")
    p.add_argument("--test", action="append", default=[], metavar="FILE",
                   help="another split (test/validation) to check for leakage and coverage (repeatable)")
    p.add_argument("--tokenizer", metavar="MODEL", help="count lengths and find jargon with this model's tokenizer")
    p.add_argument("--max-length", type=int, default=512, help="the recipe's max length (truncation share)")
    p.add_argument("--near-threshold", type=float, default=0.7, help="Jaccard similarity for near duplicates")
    p.add_argument("--min-slice", type=int, default=20, help="flag slices with fewer rows than this")
    p.add_argument("--label-columns", help="comma-separated annotator label columns (default: label_*/annotator_*)")
    p.add_argument("--out", default="audit.json", help="JSON report (default audit.json)")
    p.add_argument("--html", help="also write this HTML page")
    add_field_options(p)
    add_quarantine_option(p)
    p.set_defaults(func=run_audit)

    p = verbs.add_parser("pii", help="report, mask or pseudonymize personal data (or re-identify with a vault)",
                         description="Detect e-mail, phone, card (Luhn), IBAN (mod 97), SSN, IP, URL, date of birth, "
                         "medical record and account numbers, names after titles; custom types by regex.")
    p.add_argument("file")
    p.add_argument("--action", required=True, choices=["report", "mask", "pseudonymize", "reidentify"])
    p.add_argument("--out", help="output file (needed except for report)")
    p.add_argument("--types", help="comma-separated built-in types to detect (default: all)")
    p.add_argument("--pattern", action="append", default=[], metavar="NAME=REGEX",
                   help="an extra detector, e.g. MRN='H\\d{7}' (group 1 is the value if present; repeatable)")
    p.add_argument("--ner", choices=["spacy"], help="add person/organisation names from spaCy (the ner extra)")
    p.add_argument("--key-file", help="pseudonymisation key (default .nichetune/pii.key, created 0600)")
    p.add_argument("--vault", help="SQLite re-identification vault, kept apart from the data (0600)")
    p.add_argument("--fields", help="comma-separated top-level fields to scan (default: every string field, "
                   "nested ones and each message's content included)")
    p.add_argument("--json", action="store_true")
    add_field_options(p)
    _provenance_options(p)
    add_quarantine_option(p)
    p.set_defaults(func=run_pii)

    p = verbs.add_parser("dedup", help="remove exact and near duplicates, recording what was removed and why")
    p.add_argument("file")
    p.add_argument("--out", required=True)
    p.add_argument("--removed", help="where to write removed rows with reasons (default OUT.removed.jsonl)")
    p.add_argument("--threshold", type=float, default=0.85, help="Jaccard similarity for near duplicates")
    p.add_argument("--keep", choices=["first", "majority"], default="first",
                   help="keep the first row of a cluster, or the first with the cluster's majority label")
    add_field_options(p)
    _provenance_options(p)
    add_quarantine_option(p)
    p.set_defaults(func=run_dedup)

    p = verbs.add_parser("split", help="deterministic, stratified, group-aware train/validation/test split")
    p.add_argument("file")
    p.add_argument("--out-dir", required=True)
    p.add_argument("--ratios", default="0.8,0.1,0.1", help="train,validation,test (or train,test)")
    p.add_argument("--stratify", action="store_true", help="keep label proportions in every split")
    p.add_argument("--seed", type=int, default=0)
    add_field_options(p)
    p.set_defaults(group_field=None)
    _provenance_options(p)
    add_quarantine_option(p)
    p.set_defaults(func=run_split)

    p = verbs.add_parser("augment", help="add synthetic rows (EDA, templates, paraphrases), flagged and capped")
    p.add_argument("file", help="a training split (validation/test splits are refused)")
    p.add_argument("--out", required=True)
    p.add_argument("--ops", default="swap,delete", help="comma-separated: synonym,swap,delete,insert,paraphrase")
    p.add_argument("--per-row", type=int, default=1, help="synthetic rows per operation and row")
    p.add_argument("--alpha", type=float, default=0.1, help="share of words each EDA operation changes")
    p.add_argument("--glossary", help="JSON {term: [synonyms]} for synonym replacement and insertion")
    p.add_argument("--templates", help='JSON {"slots": {...}, "templates": [{"text": "...", "label": ...}], "n": 20}')
    p.add_argument("--paraphrase-model", help="a chat model for the paraphrase operation")
    p.add_argument("--max-synthetic-share", type=float, default=0.3, help="cap on synthetic rows in the output")
    p.add_argument("--seed", type=int, default=0)
    add_field_options(p)
    add_quarantine_option(p)
    p.set_defaults(func=run_augment)

    p = verbs.add_parser("lineage", help="print where a dataset file came from, step by step")
    p.add_argument("file")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_lineage)


def _load(args):
    from ..data.rows import load_rows
    from .data_cmd import fields_from, quarantine_path

    loaded = load_rows(args.file, task=args.task, fields=fields_from(args), quarantine=quarantine_path(args))
    _say_quarantined(loaded.report.quarantined, args)
    return loaded


def _say_quarantined(count: int, args) -> None:
    """Bad rows are never dropped silently: name where they went. An empty default file is removed;
    one the user named with --quarantine stays, as data validate leaves it."""
    from .data_cmd import drop_empty_quarantine, quarantine_path

    if count:
        print(f"{count} bad rows quarantined, with reasons and locations: {quarantine_path(args)}", file=sys.stderr)
    drop_empty_quarantine(count, args)


def _notes(args) -> dict:
    return {"licence": getattr(args, "licence", None), "consent": getattr(args, "consent", None)}


def run_audit(args) -> int:
    from ..atomic import atomic_write_text
    from ..data.audit import audit_dataset
    from ..data.audit.render import audit_html, audit_text
    from .data_cmd import fields_from, quarantine_path

    columns = [c.strip() for c in args.label_columns.split(",")] if args.label_columns else None
    report = audit_dataset(args.file, tests=args.test, task=args.task, fields=fields_from(args),
                           tokenizer=args.tokenizer, max_length=args.max_length, near_threshold=args.near_threshold,
                           min_slice=args.min_slice, label_columns=columns, quarantine=quarantine_path(args))
    _say_quarantined(report["validation"]["quarantined"], args)
    atomic_write_text(args.out, json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
    if args.html:
        atomic_write_text(args.html, audit_html(report))
    print(audit_text(report))
    print(f"report: {args.out}" + (f", {args.html}" if args.html else ""))
    return 0


def run_pii(args) -> int:
    from ..data.pii import PiiDetector
    from ..data.pii.apply import pii_file
    from ..data.provenance import record_step
    from .data_cmd import fields_from, quarantine_path

    custom = dict(_custom_pattern(item) for item in args.pattern)
    types = [t.strip().upper() for t in args.types.split(",")] if args.types else None
    detector = PiiDetector(types=types, custom=custom, ner=args.ner)
    only = [f.strip() for f in args.fields.split(",") if f.strip()] if args.fields else None
    report = pii_file(args.file, action=args.action, out=args.out, task=args.task, fields=fields_from(args),
                      detector=detector, key_file=args.key_file, vault=args.vault, only=only,
                      quarantine=quarantine_path(args))
    _say_quarantined(report["quarantined"], args)
    if args.out:
        record_step(f"pii-{args.action}", inputs=[args.file], outputs={"data": (args.out, report["rows"])},
                    params={"types": types or "all", "custom": sorted(custom), "ner": args.ner,
                            "vault": bool(args.vault), "fields": only or "all"},
                    rows_in=report["rows"], quarantined=report["quarantined"],
                    source_notes=_notes(args))
    if args.json:
        print_json(report)
        return 0
    print(f"{report['file']}: {report['rows']} rows, {report['rows_with_pii']} with PII "
          f"(scanned: {', '.join(report['fields']) if only else report['fields']})")
    print_table([{"type": t, "findings": v["findings"], "rows": v["rows"],
                  "sample": (v["masked_samples"] or [""])[0][:90]} for t, v in report["by_type"].items()],
                ["type", "findings", "rows", "sample"])
    if report["by_field"]:
        print_table([{"field": f, "findings": sum(c.values()), "types": ", ".join(f"{t}={n}" for t, n in c.items())}
                     for f, c in report["by_field"].items()], ["field", "findings", "types"])
    if args.out:
        print(f"{args.action} output: {args.out}")
    return 0


def run_dedup(args) -> int:
    from ..data.dedup import dedup_rows
    from ..data.provenance import record_step
    from ..data.rows import write_rows

    loaded = _load(args)
    result = dedup_rows(loaded.rows, threshold=args.threshold, keep=args.keep)
    removed_path = args.removed or f"{args.out}.removed.jsonl"
    write_rows(args.out, result.kept)
    write_rows(removed_path, result.removed)
    record_step("dedup", inputs=[args.file], outputs={"data": (args.out, len(result.kept)),
                                                      "removed": (removed_path, len(result.removed))},
                params={"threshold": args.threshold, "keep": args.keep}, rows_in=len(loaded.rows),
                quarantined=loaded.report.quarantined, source_notes=_notes(args))
    print(f"{len(loaded.rows)} rows -> kept {len(result.kept)}, removed {len(result.removed)} "
          f"({result.conflicts} clusters had conflicting labels); removed rows and reasons: {removed_path}")
    return 0


def run_split(args) -> int:
    from ..atomic import atomic_write_text
    from ..data.provenance import record_step
    from ..data.rows import write_rows
    from ..data.split import fingerprint, parse_ratios, split_rows
    from ..tasks import task_spec

    ratios = parse_ratios(args.ratios)
    loaded = _load(args)
    group = args.group_field
    # rows are normalised on load: whatever the source field was called, its value is now in "group"
    result = split_rows(loaded.rows, ratios, stratify=args.stratify, group_field="group" if group else None,
                        seed=args.seed, join_copies=task_spec(loaded.task).labelled)
    out = Path(args.out_dir)
    outputs = {}
    for name, rows in result.splits.items():
        write_rows(out / f"{name}.jsonl", rows)
        outputs[name] = (out / f"{name}.jsonl", len(rows))
    if "test" in result.splits:
        atomic_write_text(out / "test.fingerprint.json", json.dumps(fingerprint(result.splits["test"])) + "\n")
    record_step("split", inputs=[args.file], outputs=outputs, rows_in=len(loaded.rows),
                quarantined=loaded.report.quarantined, source_notes=_notes(args),
                params={"ratios": ratios, "stratify": args.stratify, "group_field": group, "seed": args.seed},
                extra={"synthetic_dropped": len(result.dropped_synthetic)})
    print_table([{"split": n, "rows": len(r)} for n, r in result.splits.items()], ["split", "rows"])
    if result.dropped_synthetic:
        print(f"{len(result.dropped_synthetic)} synthetic rows dropped: their parent is in validation/test")
    print(f"written to {out}/ (with manifests" + (", test fingerprint)" if "test" in result.splits else ")"))
    return 0


def run_augment(args) -> int:
    from ..data.augment import augment_rows
    from ..data.provenance import read_artifact_manifest, record_step
    from ..data.rows import write_rows
    from ..errors import NichetuneError
    from ..infer.paraphrase import lm_paraphraser

    manifest = read_artifact_manifest(args.file) or {}
    if manifest.get("role") in ("validation", "test"):
        raise NichetuneError(f"{args.file} is a {manifest['role']} split; synthetic rows never enter evaluation data",
                             hint="augment the training split only")
    ops = tuple(o.strip() for o in args.ops.split(",") if o.strip())
    loaded = _load(args)
    glossary = _json_option(args.glossary, "--glossary")
    templates = _json_option(args.templates, "--templates")
    if "paraphrase" in ops and not args.paraphrase_model:
        raise NichetuneError("the paraphrase operation needs a model", hint="pass --paraphrase-model NAME")
    paraphrase = lm_paraphraser(args.paraphrase_model) if "paraphrase" in ops else None
    result = augment_rows(loaded.rows, ops=ops, per_row=args.per_row, alpha=args.alpha, glossary=glossary,
                          templates=templates, paraphrase=paraphrase, max_share=args.max_synthetic_share,
                          seed=args.seed)
    write_rows(args.out, result.rows)
    record_step("augment", inputs=[args.file], outputs={"data": (args.out, len(result.rows))},
                rows_in=len(loaded.rows), quarantined=loaded.report.quarantined,
                params={"ops": ops, "per_row": args.per_row, "alpha": args.alpha, "seed": args.seed,
                        "max_synthetic_share": args.max_synthetic_share, "glossary": args.glossary,
                        "templates": args.templates, "paraphrase_model": args.paraphrase_model},
                extra={"synthetic_rows": result.synthetic, "synthetic_share": round(result.share, 4),
                       "capped": result.capped})
    print(f"{result.real} real + {result.synthetic} synthetic rows ({result.share:.1%} synthetic, "
          f"cap {args.max_synthetic_share:.0%}, {result.capped} candidates dropped by the cap); by operation: "
          + ", ".join(f"{k}={v}" for k, v in result.by_op.items()))
    return 0


def _custom_pattern(item: str) -> tuple[str, str]:
    from ..errors import NichetuneError
    from ..patterns import check_regex

    name, sep, regex = item.partition("=")
    try:
        if not sep or not name.strip():
            raise ValueError(f"{item!r} is not NAME=REGEX")
        return name.strip(), check_regex(regex)
    except ValueError as exc:
        raise NichetuneError(f"--pattern: {exc}",
                             hint="e.g. --pattern MRN='H(\\d{7})' (capture group 1 is the value)") from None


def _json_option(path: str | None, option: str):
    from ..data.readers import require_input
    from ..errors import DataValidationError

    if path is None:
        return None
    try:
        return json.loads(require_input(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"{option} {path}: not valid JSON ({exc})") from None


def run_lineage(args) -> int:
    from ..data.provenance import lineage_report
    from ..errors import NichetuneError

    report = lineage_report(args.file)
    manifest = report["manifest"]
    if manifest is None:
        raise NichetuneError(f"{args.file} has no manifest ({args.file}.manifest.json)",
                             hint="files written by nichetune data commands carry one; raw inputs do not")
    if args.json:
        print_json(report)
        return 0
    state = "matches its manifest" if report["unchanged"] else "CHANGED since its manifest was written"
    print(f"{args.file}: {manifest['rows']} rows, sha256 {manifest['sha256'][:12]}..., {state}")
    for src in manifest["sources"]:
        notes = ", ".join(f"{k}={v}" for k, v in src.items() if k not in ("path", "sha256"))
        print(f"  source {src['path']} (sha256 {str(src['sha256'])[:12]}...)" + (f" [{notes}]" if notes else ""))
    for i, step in enumerate(manifest["lineage"], start=1):
        outs = ", ".join(f"{role}={o['rows']}" for role, o in step["outputs"].items())
        print(f"  {i}. {step['step']} {json.dumps(step['params'], default=str)}: {step['rows_in']} rows in -> {outs}"
              f"; {step['quarantined']} quarantined; {step['tool']} at {step['time']}")
    return 0

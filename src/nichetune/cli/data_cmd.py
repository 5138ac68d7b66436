"""``nichetune data validate|list|show|export``."""

from __future__ import annotations

from pathlib import Path

from .output import print_json, print_table


def register(sub) -> None:
    parser = sub.add_parser("data", help="validate data files; list, show and export built-in datasets",
                            description="Read and validate data without ever dropping a row silently.")
    verbs = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    p = verbs.add_parser(
        "validate", help="check a file for a task; bad rows go to a quarantine file with reasons",
        description="Reads JSONL, JSON arrays, CSV/TSV, Parquet or a folder of LABEL/*.txt files. Every "
        "bad row is written to the quarantine file with its reason, field, line and byte offset.")
    p.add_argument("file", help="data file, or a folder with one subfolder per label")
    add_field_options(p, task_required=True)
    p.add_argument("--labels", help="comma-separated allowed labels; others are quarantined")
    add_quarantine_option(p)
    p.add_argument("--out", help="write the valid rows, normalised, to this JSONL file")
    p.add_argument("--strict", action="store_true", help="stop with exit code 1 at the first bad row")
    p.add_argument("--encoding", default="utf-8", help="text encoding of the input (default utf-8)")
    p.add_argument("--max-line-bytes", type=int, default=8 << 20, help="longest accepted line/element/file")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=run_validate)

    from . import data_quality_cmd

    data_quality_cmd.add_verbs(verbs)

    p = verbs.add_parser("list", help="list the built-in datasets")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_list)

    p = verbs.add_parser("show", help="size, labels, slices and sample rows of a built-in dataset")
    p.add_argument("name")
    p.add_argument("--samples", type=int, default=2)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_show)

    p = verbs.add_parser("export", help="write every row of a built-in dataset as JSONL")
    p.add_argument("name")
    p.add_argument("--out", required=True, help="output .jsonl path")
    p.set_defaults(func=run_export)


def add_field_options(p, *, task_required: bool = False) -> None:
    """Task and field-name options shared by every verb that reads a data file."""
    p.add_argument("--task", required=task_required, choices=["classification", "sft", "completion"],
                   help=None if task_required else "default: detected from the first row")
    p.add_argument("--format", choices=["jsonl", "json", "csv", "tsv", "parquet", "textdir"],
                   help="default: from the file suffix")
    p.add_argument("--text-field", default="text")
    p.add_argument("--label-field", default="label")
    p.add_argument("--group-field", default="group")
    p.add_argument("--weight-field", default="weight")
    p.add_argument("--slice-field", action="append", default=[], help="a slice field (repeatable)")
    p.add_argument("--prompt-field", default="prompt")
    p.add_argument("--response-field", default="response")
    p.add_argument("--messages-field", default="messages")


def add_quarantine_option(p) -> None:
    p.add_argument("--quarantine", help="where bad rows go, with reasons and locations "
                   "(default: STEM.quarantine.jsonl in the current folder)")


def quarantine_path(args) -> str:
    """``--quarantine``, else ``STEM.quarantine.jsonl`` in the current folder (the same for every verb)."""
    return args.quarantine or f"{Path(args.file).name.split('.')[0] or 'data'}.quarantine.jsonl"


def drop_empty_quarantine(count: int, args) -> bool:
    """No bad rows: the empty default file goes (this command just wrote it) and True is returned; one the user
    named stays, empty."""
    if count or args.quarantine:
        return False
    Path(quarantine_path(args)).unlink(missing_ok=True)
    return True


def fields_from(args):
    from ..data.schema import FieldMap

    # `data split` defaults --group-field to None (split row by row); the row's field name stays "group"
    return FieldMap(text=args.text_field, label=args.label_field, group=args.group_field or FieldMap().group,
                    weight=args.weight_field, slices=args.slice_field, prompt=args.prompt_field,
                    response=args.response_field, messages=args.messages_field)


def run_validate(args) -> int:
    from ..data.validate import validate_file

    fields = fields_from(args)
    labels = {s.strip() for s in args.labels.split(",") if s.strip()} if args.labels else None
    report = validate_file(args.file, task=args.task, fields=fields, labels=labels, format=args.format,
                           encoding=args.encoding, quarantine=quarantine_path(args), out=args.out, strict=args.strict,
                           max_line_bytes=args.max_line_bytes)
    if not args.strict and drop_empty_quarantine(report.quarantined, args):  # --strict writes no quarantine
        report.quarantine_path = None
    if args.json:
        print_json(report.to_dict())
        return 0
    print(f"{report.source}: {report.total} rows, {report.valid} valid, {report.quarantined} quarantined"
          + (f", {report.blank_lines} blank lines skipped" if report.blank_lines else ""))
    if report.reasons:
        print_table([{"reason": k, "rows": v} for k, v in report.reasons.most_common()], ["reason", "rows"])
        print(f"bad rows, with reasons and locations: {report.quarantine_path}")
    if report.labels:
        print("labels: " + ", ".join(f"{k}={v}" for k, v in report.labels.most_common()))
    if report.output_path:
        print(f"valid rows written to {report.output_path}")
    return 0


def run_list(args) -> int:
    from ..data.catalog import list_datasets

    rows = list_datasets()
    print_json(rows) if args.json else print_table(rows, ["name", "task", "description", "source"])
    return 0


def run_show(args) -> int:
    from ..data.catalog import dataset_info

    info = dataset_info(args.name, samples=args.samples)
    if args.json:
        print_json(info)
        return 0
    for key in ("name", "task", "description", "source", "rows", "fields", "slice_fields", "group_field"):
        print(f"{key:>13}: {info[key]}")
    if "labels" in info:
        total = info["rows"]
        print_table([{"label": k, "rows": v, "share": f"{v / total:.1%}"} for k, v in info["labels"].items()],
                    ["label", "rows", "share"])
    for key, value in info.items():
        if key.startswith("top_") or key == "foldoc":
            print(f"{key}: {value}")
    for i, row in enumerate(info["samples"]):
        print(f"--- sample {i + 1}")
        print_json(row)
    return 0


def run_export(args) -> int:
    from ..data.catalog import export_dataset

    n = export_dataset(args.name, args.out)
    print(f"wrote {n} rows of {args.name} to {args.out}")
    return 0

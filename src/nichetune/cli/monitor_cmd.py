"""``nichetune monitor report | export | prune``: drift per window and slice from the prediction log, feedback as
training data, and retention."""

from __future__ import annotations

import sys

from .output import print_json

ALARM_EXIT = 3  # 0: no alarm; 1: an error; 3: the report raised alarms (for cron and CI)


def register(sub) -> None:
    p = sub.add_parser("monitor", help="drift reports from the prediction log; feedback export; retention",
                       description="report: compare logged predictions, per window and per slice, with the "
                                   "evaluated run they came from: input drift (length, vocabulary, embeddings, "
                                   "slice mix), prediction drift (labels, confidence, set size), estimated accuracy "
                                   "without labels (CBPE) and measured accuracy from feedback; alarms exit with "
                                   f"status {ALARM_EXIT}.")
    verbs = p.add_subparsers(dest="monitor_command", metavar="ACTION", required=True)
    r = verbs.add_parser("report", help="drift per window and slice against the reference run; exit 3 on alarms")
    r.add_argument("log", help="the prediction log: a SQLite file or a database URL")
    r.add_argument("--reference", required=True, help="the evaluated run (directory or registry NAME@ALIAS)")
    r.add_argument("--registry", help="the registry folder or URL, for a NAME@ALIAS reference")
    r.add_argument("--model", help="the served model name to report on (default: every item in the log)")
    r.add_argument("--window", default="1d", help="window length: 30m, 6h, 1d, 1w (default %(default)s)")
    r.add_argument("--since", type=float, help="only items from this unix time on")
    r.add_argument("--out", help="write drift.json and drift.html into this folder")
    r.add_argument("--min-items", type=int, help="test windows and slices with at least this many items (default: "
                                                   "the recipe's deploy.monitor.min_items, 30)")
    r.add_argument("--no-embeddings", action="store_true", help="skip the sentence-embedding (MMD) test")
    r.add_argument("--webhook", help="POST the JSON summary to this URL when there are alarms")
    r.add_argument("--json", action="store_true", help="print the JSON summary")
    r.set_defaults(func=report)
    e = verbs.add_parser("export", help="logged texts with feedback labels, as training rows (JSONL)")
    e.add_argument("log")
    e.add_argument("--out", required=True, help="the JSONL file to write (nichetune data validate reads it)")
    e.add_argument("--model", help="only this served model's items")
    e.set_defaults(func=export)
    q = verbs.add_parser("prune", help="delete old log rows: by age and/or keeping the newest items")
    q.add_argument("log")
    q.add_argument("--keep-days", type=float, help="delete what is older than this many days")
    q.add_argument("--max-items", type=int, help="keep at most this many items (the newest)")
    q.set_defaults(func=prune)


def report(args) -> int:
    from ..monitor.drift import drift_report, parse_window
    from ..monitor.embedding import minilm_embedder
    from ..monitor.log import read_items
    from ..monitor.reference import load_reference

    window = parse_window(args.window)
    ref = load_reference(args.reference, registry=args.registry)
    items = read_items(args.log, model=args.model, shadow=False, since=args.since)
    result = drift_report(items, ref, window_s=window, embed=None if args.no_embeddings else minilm_embedder(),
                          thresholds={"min_items": args.min_items} if args.min_items else None)
    summary = {"alarms": len(result["alarms"]), "summary": result["summary"], "tests": result["tests"],
               "items": result["items"], "windows": len(result["windows"]), "alarm_list": result["alarms"]}
    if args.out:
        import json
        from pathlib import Path

        from ..atomic import atomic_write_text
        from ..monitor.page import write_drift_page

        page = write_drift_page(args.out, result, args.model)
        atomic_write_text(Path(args.out) / "drift.json", json.dumps(result, indent=1) + "\n")
        summary["page"] = str(page)
        print(f"drift page: {page}", file=sys.stderr)
    if args.webhook and result["alarms"]:
        _post(args.webhook, summary)
    if args.json:
        print_json(summary)
    else:
        print(result["summary"])
        for a in result["alarms"][:20]:
            print(f"  ALARM {a['slice']}: {a['check']} (n={a['n']}, effect {a['effect']:.3f}, "
                  f"p = {a['p_adjusted']:.2g} after Holm)")
    return ALARM_EXIT if result["alarms"] else 0


def _post(url: str, summary: dict) -> None:
    import json
    import urllib.request

    request = urllib.request.Request(url, data=json.dumps(summary, default=str).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            print(f"webhook {url}: HTTP {response.status}", file=sys.stderr)
    except OSError as exc:  # the alarm still shows in the exit status and the summary
        print(f"warning: the webhook {url} failed: {exc}", file=sys.stderr)


def export(args) -> int:
    from ..monitor.log import export_feedback

    n = export_feedback(args.log, args.out, model=args.model)
    print(f"{n} rows with feedback labels written to {args.out}", file=sys.stderr)
    return 0


def prune(args) -> int:
    from ..errors import NichetuneError
    from ..monitor.log import prune as prune_log

    if args.keep_days is None and args.max_items is None:
        raise NichetuneError("nothing to prune by", hint="give --keep-days N and/or --max-items N")
    deleted = prune_log(args.log, keep_days=args.keep_days, max_items=args.max_items)
    print(", ".join(f"{n} {table}" for table, n in deleted.items()) + " deleted", file=sys.stderr)
    return 0

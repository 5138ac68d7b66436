"""``nichetune registry register | list | show | alias | promote | rollback | history | verify | card``."""

from __future__ import annotations

from .output import print_json, print_table

DESCRIPTION = ("Numbered, immutable versions of runs and exports; aliases (champion, staging, ...) with every move "
               "recorded; rollback; sha256 verification; lineage down to the data; model cards. The registry lives "
               "in --root (default $NICHETUNE_REGISTRY or ./registry) with its catalogue in SQLite there, or in the "
               "database --db names (a SQLAlchemy URL such as postgresql+psycopg://user:pass@host/db).")


def register(sub) -> None:
    p = sub.add_parser("registry", help="versions, aliases, rollback, lineage and model cards", description=DESCRIPTION)
    verbs = p.add_subparsers(dest="registry_command", metavar="VERB", required=True)

    def verb(name: str, help_text: str):
        v = verbs.add_parser(name, help=help_text, description=help_text)
        v.add_argument("--root", help="the registry folder (default $NICHETUNE_REGISTRY or ./registry)")
        v.add_argument("--db", help="catalogue database URL (default SQLite in the registry folder)")
        v.add_argument("--mlflow", help="also mirror versions and aliases into this MLflow registry URI "
                                        "(e.g. sqlite:///mlflow.db; the mlflow extra)")
        v.add_argument("--json", action="store_true", help="print JSON")
        return v

    v = verb("register", "copy a finished run or a passed export in as the next version of NAME")
    v.add_argument("source", help="a run directory or an export folder")
    v.add_argument("--name", required=True)
    v.add_argument("--note", default="", help="intended use, shown on the model card")
    v.add_argument("--who", help="who registers it (default: the user name)")
    v.set_defaults(func=run_register)
    verb("list", "every model with its latest version and aliases").set_defaults(func=run_list)
    v = verb("show", "one version: NAME, NAME@VERSION or NAME@ALIAS")
    v.add_argument("ref")
    v.add_argument("--lineage", action="store_true", help="the chain from this version down to its data")
    v.set_defaults(func=run_show)
    for name, help_text in (("alias", "point an alias at a version"),
                            ("promote", "move an alias (champion by default) to a version")):
        v = verb(name, help_text)
        v.add_argument("ref", help="NAME@VERSION")
        if name == "alias":
            v.add_argument("alias")
        else:
            v.add_argument("--alias", default="champion")
        v.add_argument("--why", default="", help="recorded in the history")
        v.add_argument("--who")
        v.set_defaults(func=run_alias)
    v = verb("rollback", "move an alias back to the version it pointed at before")
    v.add_argument("name")
    v.add_argument("--alias", default="champion")
    v.add_argument("--why", default="")
    v.add_argument("--who")
    v.set_defaults(func=run_rollback)
    v = verb("history", "every alias move of NAME: who, when, why")
    v.add_argument("name")
    v.set_defaults(func=run_history)
    v = verb("verify", "check the sha256 of every file of a version")
    v.add_argument("ref")
    v.set_defaults(func=run_verify)
    v = verb("card", "a model card for compliance review (Markdown, or HTML with --html)")
    v.add_argument("ref")
    v.add_argument("--out", help="write it to this file instead of printing it")
    v.add_argument("--html", action="store_true")
    v.set_defaults(func=run_card)


def _registry(args):
    from ..registry import open_registry

    return open_registry(args.root, args.db, args.mlflow)


def _show_row(row: dict) -> dict:
    summary = row["summary"]
    headline = summary.get("headline") or {}
    parity = summary.get("parity") or {}
    if headline:
        evidence = f"{headline['name']} {headline['value']:.4f}"
    elif parity:
        evidence = f"parity {parity.get('status')}, {parity.get('metric')} {100 * parity.get('change', 0):+.2f} pt"
    else:
        evidence = "not evaluated"
    return {"version": f"{row['name']}@{row['version']}", "kind": f"{row['kind']} {row['format']}",
            "method": row["method"], "base": row["base_model"], "evidence": evidence,
            "aliases": ", ".join(row.get("aliases", [])), "registered": f"{row['created_at']} by {row['created_by']}"}


def run_register(args) -> int:
    row = _registry(args).register(args.source, args.name, who=args.who, note=args.note)
    if args.json:
        print_json(row)
    else:
        print(f"registered {row['name']}@{row['version']} ({row['kind']} {row['format']}) in {row['path']}")
    return 0


def run_list(args) -> int:
    rows = _registry(args).list()
    if args.json:
        print_json(rows)
    elif not rows:
        print("the registry is empty: nichetune registry register RUN_OR_EXPORT --name NAME")
    else:
        print_table([{"name": r["name"], "versions": r["versions"], "latest": r["latest"],
                      "aliases": ", ".join(f"{a}={v}" for a, v in sorted(r["aliases"].items()))} for r in rows],
                    ["name", "versions", "latest", "aliases"])
    return 0


def run_show(args) -> int:
    from ..registry.lineage import lineage, lineage_text

    registry = _registry(args)
    row = registry.resolve(args.ref)
    steps = lineage(row) if args.lineage else None
    if args.json:
        print_json({**row, **({"lineage": steps} if steps else {})})
        return 0
    shown = _show_row(row)
    print_table([shown], list(shown))
    if steps:
        print(lineage_text(steps))
    return 0


def _print_move(args, event: dict) -> int:
    if args.json:
        print_json(event)
        return 0
    moved = "rolled back to" if event["action"] == "rollback" else "->"
    was = f" (was {event['from_version']})" if event["from_version"] else ""
    print(f"{event['name']}@{event['alias']} {moved} version {event['to_version']}{was}")
    return 0


def run_alias(args) -> int:
    return _print_move(args, _registry(args).set_alias(args.ref, args.alias, who=args.who, why=args.why))


def run_rollback(args) -> int:
    return _print_move(args, _registry(args).rollback(args.name, args.alias, who=args.who, why=args.why))


def run_history(args) -> int:
    events = _registry(args).history(args.name)
    if args.json:
        print_json(events)
    elif not events:
        print(f"no alias of {args.name} has been set yet")
    else:
        print_table([{"when": e["at"], "alias": e["alias"], "action": e["action"],
                      "from": e["from_version"] or "-", "to": e["to_version"], "who": e["who"], "why": e["why"]}
                     for e in events], ["when", "alias", "action", "from", "to", "who", "why"])
    return 0


def run_verify(args) -> int:
    import sys

    registry = _registry(args)
    row = registry.resolve(args.ref)
    problems = registry.verify(args.ref)
    if args.json:
        print_json({"version": f"{row['name']}@{row['version']}", "problems": problems})
    elif problems:
        print(f"{row['name']}@{row['version']} FAILED verification:", file=sys.stderr)
        for p in problems:
            print(f"  {p}", file=sys.stderr)
    else:
        print(f"{row['name']}@{row['version']}: every file matches its sha256")
    return 1 if problems else 0


def run_card(args) -> int:
    from pathlib import Path

    from ..atomic import atomic_write_text
    from ..registry.card import card_html, card_markdown

    row = _registry(args).resolve(args.ref)
    text = card_html(row) if args.html else card_markdown(row)
    if args.out:
        atomic_write_text(Path(args.out), text)
        print(f"model card written to {args.out}")
    else:
        print(text)
    return 0

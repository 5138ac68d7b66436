"""``nichetune ab report | promote | rollback``: an A/B test from the prediction log, with always-valid p-values
so it may be read every day, and the registry move that follows its verdict."""

from __future__ import annotations

from .output import print_json, print_table


def register(sub) -> None:
    p = sub.add_parser("ab", help="A/B tests from the prediction log: report, promote the winner, roll back",
                       description="report: per-arm accuracy from feedback, a sample-ratio-mismatch check, and a "
                                   "mixture sequential probability ratio test looked at once per window, whose "
                                   "p-value and interval stay valid however often the report is read.")
    verbs = p.add_subparsers(dest="ab_command", metavar="ACTION", required=True)
    r = verbs.add_parser("report", help="arms, SRM, the always-valid test, the stop rule and a verdict")
    r.add_argument("experiment", help="the experiment's name (nichetune serve --experiment NAME=...)")
    r.add_argument("--log", required=True, help="the prediction log (SQLite file or database URL)")
    _test_options(r)
    r.add_argument("--json", action="store_true", help="print JSON")
    r.set_defaults(func=report)
    m = verbs.add_parser("promote", help="move the registry alias to the winning arm's version")
    m.add_argument("experiment")
    m.add_argument("--log", required=True)
    m.add_argument("--registry", help="the registry folder or URL")
    m.add_argument("--alias", default="champion")
    _test_options(m)
    m.set_defaults(func=promote)
    b = verbs.add_parser("rollback", help="move the alias back to the version it pointed at before")
    b.add_argument("name", help="the registered model's name")
    b.add_argument("--registry")
    b.add_argument("--alias", default="champion")
    b.set_defaults(func=rollback)


def _test_options(p) -> None:
    p.add_argument("--control", help="the arm the other is compared with (default: the first by name)")
    p.add_argument("--alpha", type=float, default=0.05, help="the test's level (default %(default)s)")
    p.add_argument("--look", default="1d", help="one look per window of this length (default %(default)s)")
    p.add_argument("--min-labelled", type=int, default=100, help="labelled answers per arm before stopping")
    p.add_argument("--max-labelled", type=int, help="stop without a difference after this many per arm")


def _report(args) -> dict:
    from ..monitor.ab import ab_report
    from ..monitor.drift import parse_window

    return ab_report(args.log, args.experiment, control=args.control, alpha=args.alpha,
                     look_s=parse_window(args.look), min_labelled=args.min_labelled, max_labelled=args.max_labelled)


def report(args) -> int:
    result = _report(args)
    if args.json:
        print_json(result)
        return 0
    print_table([{"arm": a, "share": f"{result['arms'][a]:.2f}", **{k: _fmt(s[k]) for k in
                  ("units", "items", "labelled", "accuracy", "mean_grade")}} for a, s in result["stats"].items()],
                ["arm", "share", "units", "items", "labelled", "accuracy", "mean_grade"])
    print(f"sample ratio mismatch p = {result['srm_p_value']:.3g}; {len(result['looks'])} looks; "
          f"decision: {result['decision']}")
    print(result["sentence"])
    return 0


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


def promote(args) -> int:
    from ..monitor.ab import promote as promote_winner
    from ..registry import open_registry

    result = _report(args)
    event = promote_winner(result, open_registry(args.registry), alias=args.alias)
    print(f"{event['name']}@{args.alias}: {event['from_version']} -> {event['to_version']} ({result['sentence']})")
    return 0


def rollback(args) -> int:
    from ..registry import open_registry

    event = open_registry(args.registry).rollback(args.name, args.alias, why="A/B rollback")
    print(f"{event['name']}@{args.alias}: {event['from_version']} -> {event['to_version']} (rollback)")
    return 0

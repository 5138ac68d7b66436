"""``nichetune retrain RECIPE --new-data FILE [--feedback LOG]``: the improvement loop, step by step, resumable."""

from __future__ import annotations

import sys

from .output import print_json


def register(sub) -> None:
    p = sub.add_parser("retrain", help="train a challenger on new rows and feedback, compare it with the champion, "
                                       "register it, and print the shadow experiment to start",
                       description="Validates the new rows (bad ones quarantined) and the feedback exported from a "
                                   "prediction log, drops rows that repeat the champion's test rows (leakage), "
                                   "trains a challenger with the champion's recipe on its training split plus "
                                   "these, compares the two on the champion's test rows, and registers the "
                                   "challenger. Every step leaves its files in the retrain folder; run the command "
                                   "again to resume after a failure (finished steps with the same inputs are "
                                   "reused).")
    p.add_argument("recipe", help="the champion's recipe")
    p.add_argument("--new-data", required=True, help="new labelled rows (any format `data validate` reads)")
    p.add_argument("--feedback", help="a prediction log whose feedback labels become rows too")
    p.add_argument("--champion", help="the champion run or NAME@ALIAS (default: the recipe's output_dir)")
    p.add_argument("--registry", help="register the challenger here (with --name)")
    p.add_argument("--name", help="the registered model's name")
    p.add_argument("--out", help="the retrain folder (default OUTPUT_DIR-retrain)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..monitor.retrain import retrain

    result = retrain(args.recipe, args.new_data, feedback=args.feedback, champion=args.champion,
                     registry=args.registry, name=args.name, out=args.out,
                     say=lambda text: print(text, file=sys.stderr, flush=True))
    if args.json:
        print_json(result)
        return 0
    data = result["data"]
    print(f"new rows: {data['new_rows']} kept, {data['quarantined']} quarantined, {data['leaked']} dropped as "
          f"repeats of the champion's test rows")
    print(result["verdict"])
    print(f"next: {result['next']}")
    return 0

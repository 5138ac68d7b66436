"""``nichetune compare A B``: a run against another run or its base model, on identical inputs."""

from __future__ import annotations

from .output import print_json, print_table


def register(sub) -> None:
    p = sub.add_parser(
        "compare", help="compare a run with another run or its base model (paired bootstrap, McNemar, verdict)",
        description="Scores A and B on the same rows (A's test split, or --data) and prints metric deltas with "
        "paired bootstrap 95%% intervals, McNemar's test for classifiers, a forgetting check for generators, and "
        "one verdict sentence. Writes A/eval/compare-NAME.json, which A's report shows.")
    p.add_argument("a", metavar="A", help="the candidate run directory")
    p.add_argument("b", metavar="B", help="another run directory, or `base` for A's untuned base model")
    p.add_argument("--data", help="rows to compare on instead of A's test split")
    p.add_argument("--samples", type=int, default=20, help="generation: prompts answered by both")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..eval.compare import compare

    result = compare(args.a, args.b, data=args.data, samples=args.samples)
    if args.json:
        print_json(result)
        return 0
    rows = [{"metric": k, result["a"]: round(v["a"], 4), result["b"]: round(v["b"], 4), "delta": round(v["delta"], 4),
             "95% CI": f"{v['ci_low']:+.4f} to {v['ci_high']:+.4f}" if "ci_low" in v else ""}
            for k, v in result["metrics"].items()]
    print_table(rows, ["metric", result["a"], result["b"], "delta", "95% CI"])
    print(result["sentence"])
    return 0

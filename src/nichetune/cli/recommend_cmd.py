"""``nichetune recommend``: a recipe from constraints and a data audit, every decision explained."""

from __future__ import annotations

from ..errors import NichetuneError
from .output import print_json


def register(sub) -> None:
    p = sub.add_parser(
        "recommend", help="recommend a method and settings from your constraints and data; writes a recipe",
        description="Audits the data (examples per class, lengths, duplicates, PII, groups), applies the decision "
        "table in nichetune.recommend.rules, prints every decision with the rule and the evidence that fired it, "
        "and writes a commented recipe that `nichetune train` runs as is.")
    p.add_argument("--data", required=True, help="a data file, or a built-in dataset name (nichetune data list)")
    p.add_argument("--validation", metavar="FILE",
                   help="held-out rows of your own for validation (with --test): every row of --data trains, and "
                        "the recipe names both files instead of a split")
    p.add_argument("--test", metavar="FILE", help="held-out rows of your own for the test score (with --validation)")
    p.add_argument("--task", choices=["classification", "sft", "completion"], help="default: detected from the data")
    p.add_argument("--model", help="base model (default: minilm-l6 for classification, smollm2-135m-instruct else)")
    p.add_argument("--sensitivity", choices=["none", "internal", "regulated"], default="none",
                   help="how sensitive the data is")
    p.add_argument("--latency-ms", type=float, help="p95 latency budget per request, in milliseconds")
    p.add_argument("--compute", choices=["cpu", "gpu", "cluster"], default="cpu", help="what training runs on")
    p.add_argument("--consequence", choices=["low", "high"], default="low", help="the cost of a wrong output")
    p.add_argument("--knowledge", choices=["rarely", "often", "changing"], default="rarely",
                   help="how often the domain's facts change (changing = often: retrieval plus a small adapter)")
    p.add_argument("--docs", nargs="+", default=[], metavar="DOC",
                   help="with --knowledge changing: the documents to index (files or folders); the recipe gets "
                        "an index plan that `nichetune index build --recipe` runs")
    p.add_argument("--target", choices=["server", "edge", "batch"], default="server", help="where it will run")
    p.add_argument("--budget-minutes", type=float, metavar="MIN",
                   help="the longest training you will wait for: epochs, input length and method shrink until the "
                        "estimate (timed on this machine) fits 85%% of it, a margin for timing noise")
    p.add_argument("--no-estimate", action="store_true",
                   help="skip timing a few training steps (no time estimate; --budget-minutes needs it)")
    p.add_argument("--output-dir", help="the recipe's run directory (default runs/NAME-recommended)")
    p.add_argument("--out", required=True, help="where to write the recipe YAML")
    p.add_argument("--json", action="store_true", help="print evidence, decisions and recipe as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..recommend import recommend
    from ..recommend.estimate import minutes_words
    from ..recommend.evidence import Constraints
    from ..tasks.lexical import KINDS

    constraints = Constraints(sensitivity=args.sensitivity, latency_ms=args.latency_ms, compute=args.compute,
                              consequence=args.consequence, knowledge=args.knowledge, target=args.target,
                              model=args.model, docs=tuple(args.docs), budget_minutes=args.budget_minutes)
    if args.budget_minutes is not None and args.no_estimate:
        raise NichetuneError("--budget-minutes fits the recipe to a timed estimate, and --no-estimate skips it",
                             hint="drop one of the two")
    result = recommend(args.data, constraints, task=args.task, out=args.out, output_dir=args.output_dir,
                       time_it=not args.no_estimate, validation=args.validation, test=args.test)
    if args.json:
        print_json({k: v for k, v in result.items() if k != "yaml"})
        return 0
    e = result["evidence"]
    print(f"{e['source']}: {e['rows']} rows, {e['task']}, ~{e['train_rows']} for training, "
          f"p95 length {e['p95_tokens']:.0f} tokens, {e['pii_rows']} rows with PII")
    if e["lexical"]:
        lex = e["lexical"]
        print(f"words alone (TF-IDF, {lex['scored_on']}): " + ", ".join(
            f"{KINDS[k]} accuracy {lex[k]['accuracy']:.3f} macro-F1 {lex[k]['macro_f1']:.3f}" for k in KINDS)
            + ": the bar the tuned model must clear")
    if e["zero_shot"]:
        from ..recommend.evidence import zero_shot_words

        print(f"{zero_shot_words(e['zero_shot'])}: with so few rows a tuned model may not beat it; "
              "eval compares the two")
    for d in result["decisions"]:
        settings = ", ".join(f"{k}={v}" for k, v in d["settings"].items()) or "(advice)"
        print(f"- {d['rule']}: {settings}\n    because {d['because']}")
    if result["estimate"]:
        est = result["estimate"]
        print(f"estimated training time: {minutes_words(est['minutes'])} ({est['steps']} steps x "
              f"{est['seconds_per_step']:.2f} s, timed on this machine, plus evaluation)")
    print(f"wrote {args.out}; train it with: nichetune train {args.out}")
    if result["recipe"].get("retrieval"):
        print(f"build its index with: nichetune index build --recipe {args.out}")
    return 0

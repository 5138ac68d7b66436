"""``nichetune demo``: the whole lifecycle on the embedded defaults (see ``nichetune.demo``)."""

from __future__ import annotations

import sys

from .output import print_table


def register(sub) -> None:
    p = sub.add_parser(
        "demo", help="run the whole lifecycle on the embedded models and datasets (~15 min; --quick < 3 min)",
        description="Part 1, drug reviews: validate, audit, recommend a recipe for regulated high-consequence "
        "data on a CPU, train it beside full fine-tuning and a frozen-body head-only run, and evaluate "
        "(calibration, conformal sets, condition slices, TF-IDF and zero-shot baselines). Part 2, computing "
        "jargon: LoRA instruction tuning of SmolLM2 on FOLDOC split by term, checked against the base model. "
        "Part 3, ship: exports (merged, int8, ONNX, GGUF) each checked for parity, registered with a champion alias "
        "that is promoted and rolled back, and model cards. Part 4, serve: the champions over the OpenAI-compatible "
        "API. Part 5, retrieve: a FOLDOC index, what retrieval adds to the tuned model's answers, a RAFT LoRA and "
        "cited answers with every citation checked. Part 6, watch: drug-review traffic in two phases with a shadow "
        "challenger, the drift page, an A/B test with an always-valid verdict and the promotion. Ends with a "
        "summary table and OUT/index.html linking every report (about 21 minutes fresh on 2 CPU cores). A step "
        "that fails says how to fix it and the demo carries on; a second run reuses prepared models, data and "
        "finished runs.")
    p.add_argument("--quick", action="store_true", help="a reduced version: fewer rows, shorter inputs, a few steps")
    p.add_argument("--out-dir", default="demo-out", help="where the demo writes everything (default demo-out/)")
    p.add_argument("--fresh", action="store_true", help="retrain and re-evaluate instead of reusing finished runs")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..demo import run_demo
    from ..demo.summary import COLUMNS, EXPORT_COLUMNS, export_rows

    summary = run_demo(args.out_dir, quick=args.quick, fresh=args.fresh)
    print()
    print_table(summary["summary"], COLUMNS)
    exported = export_rows(summary.get("exports") or {})
    if exported:
        print()
        print_table(exported, EXPORT_COLUMNS)
    if args.quick:
        print("quick mode checks that every step works; its few training steps say little about the models "
              "(`nichetune demo` without --quick runs the real comparison)")
    print(f"\nindex page: {args.out_dir}/index.html  ({summary['seconds'] / 60:.1f} min)")
    if summary["failures"]:
        print(f"{len(summary['failures'])} step(s) failed:", file=sys.stderr)
        for f in summary["failures"]:
            print(f"  {f['step']}: {f['error']}\n    how to fix: {f['fix']}", file=sys.stderr)
        return 1
    return 0

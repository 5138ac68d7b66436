"""``nichetune review export|import``: a stratified sample for domain experts, and their grades back."""

from __future__ import annotations

from .output import print_table


def register(sub) -> None:
    parser = sub.add_parser("review", help="expert review: export a stratified sample as CSV, import the grades",
                            description="Human review of an evaluated run: experts grade a sample stratified by "
                            "slice and confidence; their accuracy and agreement go into the report.")
    verbs = parser.add_subparsers(dest="review_command", metavar="ACTION", required=True)
    p = verbs.add_parser("export", help="write a stratified sample with empty grade columns as CSV",
                         description="Samples the run's evaluated outputs by slice and confidence band and "
                         "writes RUN/eval/review.csv (or --out) with one empty grade_N column per grader.")
    p.add_argument("run_dir", help="an evaluated run directory (nichetune eval RUN_DIR)")
    p.add_argument("--n", type=int, default=100, help="items to sample")
    p.add_argument("--graders", type=int, default=2, help="grade columns, one per expert")
    p.add_argument("--slice-field", help="stratify by this slice field (default: the first evaluated one)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="CSV path (default RUN/eval/review.csv)")
    p.set_defaults(func=run_export)

    p = verbs.add_parser("import", help="read graded CSV back into the run's report",
                         description="Reads grade_N columns (1/0, yes/no), writes RUN/eval/review.json with "
                         "each grader's accuracy and inter-rater agreement, and re-renders RUN/report.html.")
    p.add_argument("file", help="the graded CSV")
    p.add_argument("--run", dest="run_dir", help="the run (default: the CSV's run column)")
    p.set_defaults(func=run_import)


def run_export(args) -> int:
    from ..eval.review import export_review

    path = export_review(args.run_dir, n=args.n, graders=args.graders, out=args.out, slice_field=args.slice_field,
                         seed=args.seed)
    print(f"wrote {path}: fill grade_1..grade_{args.graders} with 1 (acceptable) or 0, then "
          f"`nichetune review import {path}`")
    return 0


def run_import(args) -> int:
    from ..eval.review import import_review

    result = import_review(args.file, args.run_dir)
    print_table([{"grader": g, "graded": v["graded"], "accuracy": round(v["accuracy"], 4),
                  "95% CI": f"{v['ci_low']:.3f}-{v['ci_high']:.3f}"} for g, v in result["graders"].items()],
                ["grader", "graded", "accuracy", "95% CI"])
    agree = result["agreement"] or {}
    for key in ("cohen_kappa", "fleiss_kappa", "krippendorff_alpha_nominal"):
        if key in agree:
            print(f"{key.replace('_', ' ')}: {agree[key]:.3f}")
    return 0

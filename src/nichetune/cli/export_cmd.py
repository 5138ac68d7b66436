"""``nichetune export RUN_DIR --to FORMAT --out DIR``."""

from __future__ import annotations

from .output import print_json, print_table


def register(sub) -> None:
    p = sub.add_parser(
        "export", help="export a run (merged, bf16, int8, onnx, onnx-int8, gguf) with a parity report",
        description="Writes the run in a form to ship, then checks it against the run on the run's held-out "
        "rows: largest logit difference, the task metric with its change and a paired-bootstrap interval, "
        "size, load time and latency. An export whose metric drops by more than --tolerance points is "
        "written but marked failed (exit status 1). The folder carries a manifest with the sha256 of every "
        "file, the source run and the tool versions.")
    p.add_argument("run_dir", help="a finished run directory")
    p.add_argument("--to", help="merged | bf16 | int8 | onnx | onnx-int8 | gguf (default: the format the run's "
                   "recipe plans in deploy.quantize / deploy.merge, as `nichetune recommend` writes them; int8 is "
                   "onnx-int8 for encoder classifiers)")
    p.add_argument("--out", required=True, help="the export folder to create")
    p.add_argument("--tolerance", type=float, default=0.5, help="largest metric drop allowed, in points")
    p.add_argument("--rows", type=int, help="check parity on the first N held-out rows only (default: all)")
    p.add_argument("--force", action="store_true", help="replace an existing export folder")
    p.add_argument("--json", action="store_true", help="print the export's manifest as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    import sys

    from ..export.export import export_run
    from ..export.registry import FORMATS

    if args.to is None:
        args.to = _planned(args.run_dir)
    if args.to in FORMATS and (why := FORMATS[args.to].slow_here()):
        print(f"note: {args.to} will run slowly here, parity included: {why}", file=sys.stderr)
    manifest = export_run(args.run_dir, args.to, args.out, tolerance=args.tolerance, rows=args.rows,
                          force=args.force, progress=None if args.json else print)
    p = manifest["parity"]
    if args.json:
        print_json(manifest)
    else:
        print_table([{"format": manifest["format"], "status": p["status"], p["metric"]: f"{p['export']:.4f}",
                      "change": f"{100 * p['change']:+.2f} pt ({100 * p['ci_low']:+.2f} to {100 * p['ci_high']:+.2f})",
                      "max logit diff": f"{p['max_logit_diff']:.2e}", "size MB": round(p["disk_mb"], 1),
                      "load s": round(p["load_s"], 2), "p50 ms": round(p["p50_ms"], 1)}],
                    ["format", "status", p["metric"], "change", "max logit diff", "size MB", "load s", "p50 ms"])
        print(f"export written to {args.out}")
    if p["status"] != "passed":
        print(f"export failed parity: {p['reason']}; it is kept in {args.out} for inspection and the registry "
              "will refuse it", file=sys.stderr)
        return 1
    return 0


def _planned(run_dir: str) -> str:
    import sys

    from ..errors import NichetuneError
    from ..export.plan import planned_format
    from ..export.registry import formats_for
    from ..run.loading import read_run

    manifest, recipe = read_run(run_dir)
    plan = planned_format(manifest, recipe.deploy)
    if plan is None:
        raise NichetuneError(f"the recipe of {run_dir} plans no export (deploy.quantize: {recipe.deploy.quantize}, "
                             f"deploy.merge: {str(recipe.deploy.merge).lower()})",
                             hint=f"name a format with --to: {', '.join(formats_for(manifest))}")
    print(f"exporting as {plan[0]}: {plan[1]}", file=sys.stderr)
    return plan[0]

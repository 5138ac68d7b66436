"""``nichetune eval RUN_DIR`` and ``nichetune report RUN_DIR``."""

from __future__ import annotations

from .output import print_json, print_table


def register(sub) -> None:
    p = sub.add_parser(
        "eval", help="evaluate a run: metrics, baselines, calibration, conformal sets, slices; writes report.html",
        description="Scores the run's test split (or --data) and writes RUN/eval/metrics.json, "
        "RUN/eval/predictions.jsonl and RUN/report.html. Temperature and conformal thresholds are "
        "fitted on the run's validation split; baselines are trained on its train split.")
    p.add_argument("run_dir", help="a finished run directory")
    p.add_argument("--data", help="labelled rows to evaluate instead of the run's test split")
    p.add_argument("--alpha", type=float, help="conformal miscoverage, sets cover >= 1 - alpha (default: the "
                   "recipe's eval.alpha, 0.1)")
    p.add_argument("--target-accuracy", type=float, help="for the selective-prediction threshold (default: the "
                   "recipe's eval.target_accuracy, 0.9)")
    p.add_argument("--slice-field", action="append", dest="slice_fields",
                   help="a field to slice by (repeatable; default: condition/source/subject fields present)")
    p.add_argument("--min-slice-count", type=int, default=20, help="slices with fewer rows are flagged as thin")
    p.add_argument("--no-zero-shot", action="store_true", help="skip the zero- and few-shot prompting baselines")
    p.add_argument("--shots-per-label", type=int, default=1,
                   help="classification: in-context examples per label for the k-shot baseline (0: none)")
    p.add_argument("--prompt-model", help="classification: the instruct LM prompted for the zero/k-shot baselines "
                   "(default: the run's base if it is a causal LM, else smollm2-135m-instruct)")
    p.add_argument("--no-latency", action="store_true", help="skip latency and footprint of the serving variants")
    p.add_argument("--latency-requests", type=int, default=20, help="single requests timed per variant")
    p.add_argument("--no-audit", action="store_true", help="skip the data audit of the run's splits")
    p.add_argument("--samples", type=int, default=20, help="sft: prompts answered greedily by base and tuned model")
    p.add_argument("--glossary", help="sft: a file with one domain term per line (default: the data's `term` field)")
    p.add_argument("--forbidden", help="sft: a file with one term per line that answers must not use")
    p.add_argument("--general-rows", type=int, default=40,
                   help="sft/completion: BBC News articles scored by both models for the forgetting check (0: skip)")
    p.add_argument("--json", action="store_true", help="print metrics.json")
    p.set_defaults(func=run_eval)

    p = sub.add_parser("report", help="re-render a run's report.html from eval/metrics.json",
                       description="Re-renders RUN/report.html without recomputing anything.")
    p.add_argument("run_dir")
    p.set_defaults(func=run_report)


def run_eval(args) -> int:
    from ..eval.run import evaluate_run
    from ..tasks import task_spec

    metrics = evaluate_run(args.run_dir, args.data, alpha=args.alpha, target_accuracy=args.target_accuracy,
                           slice_fields=args.slice_fields, min_count=args.min_slice_count,
                           zero_shot=not args.no_zero_shot, shots_per_label=args.shots_per_label,
                           prompt_model=args.prompt_model, samples=args.samples, glossary=_terms(args.glossary),
                           forbidden=_terms(args.forbidden), latency=not args.no_latency,
                           latency_requests=args.latency_requests, audit=not args.no_audit,
                           general_rows=args.general_rows)
    if args.json:
        print_json(metrics)
        return 0
    if not task_spec(metrics["task"]).labelled:
        ppl = metrics["perplexity"]
        print(f"response perplexity {ppl['base']['perplexity']:.3f} (base) -> {ppl['tuned']['perplexity']:.3f} "
              f"(tuned) on {metrics['n']} rows ({metrics['data']})")
        if "answers" in metrics:
            print(metrics["answers"]["verdict"]["sentence"])
        if "forgetting" in metrics:
            f = metrics["forgetting"]
            print(f"general-domain perplexity {f['base']['perplexity']:.3f} -> {f['tuned']['perplexity']:.3f}")
        _latency(metrics)
        print(f"report: {args.run_dir}/report.html")
        return 0
    m = metrics["metrics"]
    print(f"accuracy {m['accuracy']:.4f}  macro-F1 {m['macro_f1']:.4f}  on {metrics['n']} rows ({metrics['data']})")
    print(f"verdicts on {metrics['primary']['name']} (the recipe's eval.metric)")
    print_table([{"baseline": c["baseline"], "accuracy": round(c["baseline_accuracy"], 4),
                  "acc delta": round(c["bootstrap"]["delta"], 4), "McNemar p": f"{c['mcnemar']['p_value']:.3g}",
                  "macro-F1": round(c["baseline_macro_f1"], 4),
                  "F1 delta": round(c["bootstrap_macro_f1"]["delta"], 4),
                  "F1 p": f"{c['bootstrap_macro_f1']['p_value']:.3g}", "verdict": c["verdict"]}
                 for c in metrics["comparisons"]],
                ["baseline", "accuracy", "acc delta", "McNemar p", "macro-F1", "F1 delta", "F1 p", "verdict"])
    from ..eval.evaluators.baselines import simpler_model_warning

    warning = simpler_model_warning(metrics["comparisons"])
    if warning:
        print(warning)
    if metrics.get("copies", {}).get("rows"):
        from ..eval.evaluators.copies import sentence

        print(sentence(metrics["copies"]))
    inputs = metrics.get("inputs")
    if inputs and inputs["texts_cut"]:
        from ..truncation import how_read

        print(f"the model read {inputs['token_share']:.0%} of the evaluation tokens: {inputs['texts_cut']:.0%} of the "
              f"texts are longer than its {inputs['max_length']}-token window, and it read those {how_read(inputs)}")
    _latency(metrics)
    print(f"report: {args.run_dir}/report.html")
    return 0


def _latency(metrics: dict) -> None:
    from ..eval.latency import measured
    from ..eval.report import quality_text

    rows = [{"variant": r["variant"], "p50 ms": round(r["p50_ms"], 1), "p95 ms": round(r["p95_ms"], 1),
             "disk MB": round(r["disk_mb"], 1), "quality": quality_text(r["quality"])}
            for r in measured(metrics.get("latency", []))]
    if rows:
        print_table(rows, ["variant", "p50 ms", "p95 ms", "disk MB", "quality"])


def _terms(path: str | None) -> list[str] | None:
    if path is None:
        return None
    from ..data.readers import require_input

    return [line.strip() for line in require_input(path).read_text(encoding="utf-8").split("\n") if line.strip()]


def run_report(args) -> int:
    from ..eval.run import render_report

    print(render_report(args.run_dir))
    return 0

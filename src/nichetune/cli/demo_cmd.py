"""``nichetune demo``: the main job on embedded defaults (grows with the pipeline).

Today it prepares both embedded models, validates, summarises and audits the built-in medical
dataset, answers a computing question with the causal LM, and measures zero-shot review
classification against the majority-class baseline (the bar fine-tuning must clear).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from .output import print_table, status

QUESTION = "What is a compiler?"
# Zero-shot with an encoder works far better with a sentence per label than with the bare word.
REVIEW_LABELS = {
    "positive": "The medication worked well for me and I am happy with it.",
    "neutral": "The medication had mixed results, some benefit and some problems.",
    "negative": "The medication did not work or had bad side effects.",
}


def register(sub) -> None:
    p = sub.add_parser("demo", help="run the main job on the embedded defaults",
                       description="Prepare the embedded models, validate and summarise the built-in "
                       "datasets, and run quick checks. Steps that fail are reported and skipped.")
    p.add_argument("--quick", action="store_true", help="a reduced version (fewer tokens, fewer rows)")
    p.add_argument("--out-dir", default="demo-out", help="where the demo writes its files (default demo-out/)")
    p.set_defaults(func=run)


def _step(name: str, failures: list[str], fn):
    try:
        with status(name):
            return fn()
    except Exception as exc:  # keep going: the demo reports what failed and carries on
        failures.append(f"{name}: {exc}")
        print(f"  step failed: {exc}", file=sys.stderr)
        return None


def run(args) -> int:
    from ..data.catalog import dataset_info, export_dataset
    from ..data.validate import validate_file
    from ..infer.classify import classify
    from ..infer.generate import generate, print_stream
    from ..models.prepare import prepare_model

    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    summary: dict = {}

    for name in ("smollm2-135m-instruct", "minilm-l6"):
        _step(f"prepare model {name}", failures, lambda n=name: prepare_model(n))

    def summarise() -> dict:
        path = out / "drug-reviews.jsonl"
        export_dataset("drug-reviews", path)
        report = validate_file(path, task="classification", quarantine=out / "drug-reviews.quarantine.jsonl")
        info = dataset_info("drug-reviews", samples=0)
        print_table([{"label": k, "rows": v} for k, v in info["labels"].items()], ["label", "rows"])
        print("top conditions: " + ", ".join(f"{k} ({v})" for k, v in list(info["top_condition"].items())[:6]))
        return {"rows": report.total, "valid": report.valid, "quarantined": report.quarantined}

    summary["drug-reviews"] = _step("validate and summarise drug-reviews", failures, summarise)

    def audit() -> dict:
        from ..atomic import atomic_write_text
        from ..data.audit import audit_dataset
        from ..data.audit.render import audit_html
        from ..data.rows import load_rows, write_rows
        from ..data.schema import FieldMap

        rows = load_rows(out / "drug-reviews.jsonl").rows
        for split in ("train", "test"):
            write_rows(out / f"drug-reviews.{split}.jsonl", [r for r in rows if r["original_split"] == split])
        report = audit_dataset(out / "drug-reviews.train.jsonl", tests=[out / "drug-reviews.test.jsonl"],
                               tokenizer="minilm-l6", fields=FieldMap(slices=["condition"]))
        atomic_write_text(out / "audit.html", audit_html(report))
        for warning in report["warnings"]:
            print(f"  warning: {warning}")
        leak = report["leakage"]["drug-reviews.test.jsonl"]
        print(f"  audit page: {out / 'audit.html'}")
        return {"warnings": len(report["warnings"]), "leaked_test_rows": leak["leaked_rows"],
                "pii_rows": report["pii"]["rows_with_pii"]}

    summary["audit"] = _step("audit drug-reviews (duplicates, leakage, PII, condition slices)", failures, audit)

    def answer() -> str:
        print(f"Q: {QUESTION}\nA: ", end="", flush=True)
        text = generate("smollm2-135m-instruct", QUESTION, max_new_tokens=40 if args.quick else 120,
                        on_text=print_stream)
        print()
        return text

    summary["generate"] = _step("generate with smollm2-135m-instruct", failures, answer)

    def zero_shot() -> dict:
        from ..data.catalog import load_dataset

        rows = load_dataset("drug-reviews")
        train = [r for r in rows if r["original_split"] == "train"]
        test = [r for r in rows if r["original_split"] == "test"][: 40 if args.quick else 200]
        majority = max(set(r["label"] for r in train), key=[r["label"] for r in train].count)
        preds = classify("minilm-l6", [r["text"] for r in test], labels=REVIEW_LABELS)
        hits = [p.label == r["label"] for p, r in zip(preds, test, strict=True)]
        for pred, row, hit in list(zip(preds, test, hits, strict=True))[:4]:
            print(f"  {'ok ' if hit else 'BAD'} predicted {pred.label:<8} gold {row['label']:<8} {row['text'][:60]}...")
        result = {"n": len(test), "zero_shot_accuracy": sum(hits) / len(test),
                  "majority_accuracy": sum(r["label"] == majority for r in test) / len(test)}
        print(f"  zero-shot minilm-l6: {result['zero_shot_accuracy']:.1%} accuracy on {len(test)} held-out reviews; "
              f"always answering '{majority}': {result['majority_accuracy']:.1%}. "
              "A fine-tuned model has to beat both.")
        return result

    summary["zero_shot"] = _step("zero-shot classify drug reviews with minilm-l6", failures, zero_shot)

    with tempfile.NamedTemporaryFile("w", dir=out, delete=False, suffix=".tmp") as fh:
        json.dump({"summary": summary, "failures": failures}, fh, indent=2, default=str)
    Path(fh.name).replace(out / "demo-summary.json")
    print(f"\nsummary written to {out / 'demo-summary.json'}")
    if failures:
        print(f"{len(failures)} step(s) failed:", *failures, sep="\n  ", file=sys.stderr)
        return 1
    return 0

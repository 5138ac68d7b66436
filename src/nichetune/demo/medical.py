"""Demo part 1: drug reviews, from raw data to a calibrated, compared classifier.

Validate and audit the data, ask ``recommend`` for a recipe under "regulated, high consequence,
CPU", train it beside two comparisons (full fine-tuning and a frozen body with only the head
trained) and the few-shot path (``recommend`` again, on 8 of its training reviews a label: the pretrained
encoder, a head fitted by logistic regression and the base model's zero-shot as a prior where the label words
score at least what the rows teach a head, else a contrastive pair stage before that head),
evaluate the recommended run against TF-IDF and the zero-shot base, and compare every run with the
base model and with the recommended run on the same test reviews.
"""

from __future__ import annotations

from pathlib import Path

from ..run import read_manifest
from ..run.paths import RunPaths
from .runs import compare_or_reuse, evaluate_or_reuse, train_or_reuse
from .steps import SKIPPED, Steps

DATASET = "drug-reviews"
MODEL = "minilm-l6"
CONSTRAINTS = {"sensitivity": "regulated", "consequence": "high", "compute": "cpu"}
# run name -> (what the summary calls it, recipe overrides on top of the recommended recipe)
COMPARISONS = {
    "drug-reviews-full": ("full fine-tuning", ("method.name=full", "train.lr=5e-5")),
    "drug-reviews-head-only": ("frozen body, head only", ("method.name=freeze", "method.layers=6")),
}
FEW_SHOT_K = 8  # reviews a label the few-shot run trains on (and as many for validation)
STEPS = 9


def run_medical(steps: Steps, out: Path, budget, *, fresh: bool) -> dict:
    """Every step of part 1; returns what the summary needs (runs, metrics, comparisons)."""
    from ..config.recipe import load_recipe

    data_file = out / "data" / f"{DATASET}.jsonl"
    result: dict = {"runs": {}}
    exported = steps.run(f"export and validate {DATASET} (bad rows go to a quarantine file)",
                         lambda: _export_and_validate(data_file, steps.say),
                         command=f"nichetune data export {DATASET} --out {data_file} && "
                                 f"nichetune data validate {data_file} --task classification")
    result["audit"] = steps.run(
        "audit: PII, duplicates, leakage between the source's own train/test split, condition slices",
        lambda: _audit(data_file, out, steps.say), needs=(exported,),
        command=f"nichetune data audit {_part(data_file, 'train')} --test {_part(data_file, 'test')} "
                f"--tokenizer {MODEL} --slice-field condition --html {out / 'audit.html'}")

    recipe_file = out / "recipes" / f"{DATASET}-recommended.yaml"
    run_root = out / "runs"
    flags = " ".join(f"--{k} {v}" for k, v in CONSTRAINTS.items())
    recommended = steps.run(
        "recommend a recipe for regulated, high-consequence data on a CPU",
        lambda: _recommend(recipe_file, run_root / f"{DATASET}-recommended", steps.say),
        command=f"nichetune recommend --data {DATASET} {flags} --out {recipe_file} "
                f"--output-dir {run_root / f'{DATASET}-recommended'}")

    overrides = [*budget.medical, *budget.recommended]
    main = steps.run(
        "train the recommended recipe",
        lambda: train_or_reuse(load_recipe(recipe_file, overrides), fresh=fresh, say=steps.say),
        needs=(recommended,), command=f"nichetune train {recipe_file} {' '.join(overrides)}".strip())
    if main is not SKIPPED:
        result["runs"][f"{DATASET}-recommended"] = {"manifest": main, "label": f"recommended: {recommended}"}
    for name, (label, method) in COMPARISONS.items():
        extra = [*budget.medical, *method, *budget.comparison, f"output_dir={run_root / name}"]
        manifest = steps.run(f"train the comparison: {label}",
                             lambda extra=extra: train_or_reuse(load_recipe(recipe_file, extra), fresh=fresh,
                                                                say=steps.say),
                             needs=(recommended,), command=f"nichetune train {recipe_file} {' '.join(extra)}")
        if manifest is not SKIPPED:
            result["runs"][name] = {"manifest": manifest, "label": label}

    main_dir = run_root / f"{DATASET}-recommended"
    few_dir = run_root / f"{DATASET}-few-shot"
    few = steps.run(
        f"few-shot: recommend and train on {FEW_SHOT_K} of those training reviews a label",
        lambda: _few_shot(main_dir, out, few_dir, budget, fresh, steps.say), needs=(main,),
        command=f"nichetune recommend --data {_few_file(out, 'train')} --validation {_few_file(out, 'validation')} "
                f"--test {RunPaths(main_dir).split('test')} {flags} --out {_few_recipe(out)} --output-dir {few_dir} "
                f"&& nichetune train {_few_recipe(out)} {' '.join(_few_overrides(budget))}")
    if few is not SKIPPED:
        result["runs"][few_dir.name] = {"manifest": few, "label": f"few-shot, {FEW_SHOT_K} reviews a label: "
                                                                 + few_shot_path(few)}

    no_latency = "" if budget.latency else " --no-latency"
    result["metrics"] = steps.run(
        "evaluate: calibration, conformal sets, condition slices, TF-IDF and zero-shot baselines, latency",
        lambda: _evaluate(main_dir, budget, fresh, steps.say), needs=(main,),
        command=f"nichetune eval {main_dir} --shots-per-label 0{no_latency}")
    result["vs_base"] = steps.run(
        "compare each comparison with the base model and with the recommended run",
        lambda: _compare_all(main_dir, run_root, result["runs"], fresh, steps.say), needs=(main,),
        command=" && ".join([f"nichetune compare {run_root / n} base" for n in COMPARISONS]
                            + [f"nichetune compare {main_dir} {run_root / n}" for n in COMPARISONS]))
    result["evaluated"], result["report"] = main_dir.name, RunPaths(main_dir).report
    return result


def _part(data_file: Path, split: str) -> Path:
    return data_file.with_suffix(f".{split}.jsonl")


def _export_and_validate(data_file: Path, say) -> dict:
    from ..data.catalog import export_dataset, load_dataset
    from ..data.validate import validate_file

    data_file.parent.mkdir(parents=True, exist_ok=True)
    if data_file.is_file() and sum(1 for _ in data_file.open()) == len(load_dataset(DATASET)):
        say(f"reusing {data_file}")
    else:
        export_dataset(DATASET, data_file)
    quarantine = data_file.with_suffix(".quarantine.jsonl")
    report = validate_file(data_file, task="classification", quarantine=quarantine)
    say(f"{report.total} rows: {report.valid} valid, {report.quarantined} quarantined"
        + (f" (reasons in {quarantine})" if report.quarantined else ""))
    return {"rows": report.total, "valid": report.valid, "quarantined": report.quarantined}


def _audit(data_file: Path, out: Path, say) -> dict:
    from ..atomic import atomic_write_text
    from ..data.audit import audit_dataset
    from ..data.audit.render import audit_html
    from ..data.rows import load_rows, write_rows
    from ..data.schema import FieldMap

    rows = load_rows(data_file).rows
    for split in ("train", "test"):
        write_rows(_part(data_file, split), [r for r in rows if r["original_split"] == split])
    report = audit_dataset(_part(data_file, "train"), tests=[_part(data_file, "test")], tokenizer=MODEL,
                           fields=FieldMap(slices=["condition"]))
    atomic_write_text(out / "audit.html", audit_html(report))
    for warning in report["warnings"]:
        say(f"  warning: {warning}")
    drugs = {s: {r["group"] for r in rows if r["original_split"] == s} for s in ("train", "test")}
    shared = len(drugs["test"] & drugs["train"]) / max(1, len(drugs["test"]))
    say(f"  {shared:.0%} of the drugs in the source's test split also appear in its train split: "
        "the runs below split by drug instead, so every test review is about a drug never trained on")
    leak = report["leakage"][_part(data_file, "test").name]
    return {"warnings": report["warnings"], "leaked_test_rows": leak["leaked_rows"],
            "pii_rows": report["pii"]["rows_with_pii"], "shared_drugs": shared, "page": str(out / "audit.html")}


def _recommend(recipe_file: Path, run_dir: Path, say, data: str = DATASET, **held_out: str) -> str:
    from ..recommend import recommend
    from ..recommend.estimate import minutes_words
    from ..recommend.evidence import Constraints

    recipe_file.parent.mkdir(parents=True, exist_ok=True)
    result = recommend(data, Constraints(**CONSTRAINTS), out=recipe_file, output_dir=str(run_dir), **held_out)
    for decision in result["decisions"]:
        say(f"  {decision['rule']}: {decision['because']}")
    lexical = result["evidence"]["lexical"]
    if lexical:
        best = lexical[lexical["best"]]
        say(f"  the bar: words alone (TF-IDF, {lexical['scored_on']}) reach accuracy {best['accuracy']:.3f}, "
            f"macro-F1 {best['macro_f1']:.3f}")
    if result["evidence"]["zero_shot"]:
        from ..recommend.evidence import zero_shot_words

        say(f"  {zero_shot_words(result['evidence']['zero_shot'])}")
    if result["estimate"]:
        say(f"  estimated training time on this machine: {minutes_words(result['estimate']['minutes'])} "
            f"({result['estimate']['steps']} steps, timed)")
    method = result["recipe"]["method"]
    return method["name"] + (f" r={method['r']}" if "r" in method else "")


def _few_file(out: Path, split: str) -> Path:
    return out / "data" / f"{DATASET}-{FEW_SHOT_K}-per-label.{split}.jsonl"


def _few_recipe(out: Path) -> Path:
    return out / "recipes" / f"{DATASET}-few-shot.yaml"


def _few_overrides(budget) -> list[str]:
    return [*budget.medical, *budget.few_shot]


def few_shot_path(manifest) -> str:
    """Which few-shot recipe ``recommend`` chose, in a few words, from the run's manifest."""
    prior = getattr(manifest.result, "zero_shot_prior", None)
    if prior:
        return f"pretrained encoder, fitted head, zero-shot prior (weight {prior['weight']:g})"
    return "pairs, label anchors, logistic head" if getattr(manifest.result, "contrastive", None) else "logistic head"


def _few_shot(main_dir: Path, out: Path, run_dir: Path, budget, fresh: bool, say):
    """``FEW_SHOT_K`` reviews a label from the recommended run's training and validation splits (seeded), the
    recipe ``recommend`` writes for so few (the pair stage, or where the label words score at least what the rows
    teach, the pretrained encoder with the zero-shot prior), trained and tested on the recommended run's test
    reviews."""
    import numpy as np

    from ..config.recipe import load_recipe
    from ..data.rows import load_rows, write_rows
    from ..data.split import first_per_label

    for split in ("train", "validation"):
        rows = load_rows(RunPaths(main_dir).split(split), task="classification").rows
        order = np.random.default_rng(0).permutation(len(rows))
        write_rows(_few_file(out, split), [rows[i] for i in first_per_label([r["label"] for r in rows],
                                                                             FEW_SHOT_K, order)])
    # validated on its own sample and tested on the recommended run's test reviews, which recommend is told of
    _recommend(_few_recipe(out), run_dir, say, data=str(_few_file(out, "train")),
               validation=str(_few_file(out, "validation")), test=str(RunPaths(main_dir).split("test")))
    manifest = train_or_reuse(load_recipe(_few_recipe(out), _few_overrides(budget)), fresh=fresh, say=say)
    few, full = manifest.result.test or {}, read_manifest(RunPaths(main_dir).manifest).result.test or {}
    nan = float("nan")
    say(f"  {manifest.data.rows.get('train', 0)} training reviews: test macro-F1 {few.get('macro_f1', nan):.3f} "
        f"against {full.get('macro_f1', nan):.3f} for the recommended run, which trained on all of them")
    return manifest


def _evaluate(run_dir: Path, budget, fresh: bool, say) -> dict:
    metrics = evaluate_or_reuse(run_dir, fresh=fresh, say=say, shots_per_label=0, latency=budget.latency,
                                latency_requests=budget.latency_requests)
    m = metrics["metrics"]
    say(f"  test accuracy {m['accuracy']:.3f}, macro-F1 {m['macro_f1']:.3f} on {metrics['n']} reviews "
        f"of drugs never seen in training")
    for c in metrics["comparisons"]:
        say(f"  {c['sentence']}")
        if c.get("metric") != "accuracy" and c.get("accuracy_sentence"):
            say(f"    on accuracy: {c['accuracy_sentence']}")
    cal = metrics["calibration"]
    say(f"  expected calibration error {cal['raw']['ece']:.3f} -> {cal['temperature_scaled']['ece']:.3f} "
        f"after temperature scaling (T = {cal['temperature']:.2f})")
    return metrics


def _compare_all(main_dir: Path, run_root: Path, runs: dict, fresh: bool, say) -> dict:
    verdicts = {}
    for name in runs:
        if name != main_dir.name:
            verdicts[name] = compare_or_reuse(run_root / name, "base", fresh=fresh, say=say)
            say(f"  {verdicts[name]['sentence']}")
            versus = compare_or_reuse(main_dir, str(run_root / name), fresh=fresh, say=say)
            say(f"  {versus['sentence']}")
    return verdicts

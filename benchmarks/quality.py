"""Does the recommended specialist beat the strong simple baselines? `recommend -> train -> eval` with the defaults on
every built-in classification dataset (and any labelled JSONL given), against TF-IDF + logistic regression, TF-IDF +
a linear SVM, a SetFit-style few-shot model on the same body, and the zero-shot base model, on identical test rows.

    .venv/bin/python benchmarks/quality.py                                   # the built-ins, seed 0, 25-minute budget
    .venv/bin/python benchmarks/quality.py --seeds 0 1 2 --datasets drug-reviews
    .venv/bin/python benchmarks/quality.py --data tickets.jsonl --budget-minutes 10
    .venv/bin/python benchmarks/quality.py --few-shot 8                      # also the few-shot path vs SetFit-style

Every fit runs in its own process (`nichetune train`, or this file's `--baseline` mode), timed, with its peak
resident memory read from the kernel's accounting of that process (`wait4`). Accuracy and macro-F1 carry 95%
bootstrap intervals over the test rows; with several seeds the table shows the mean and the spread (min to max).
The few-shot comparison samples k rows per label from the recommended run's training split (its validation split
likewise) and scores both on the same test split. Results: benchmarks/results/quality.json (and .md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from child_peak import run_measured  # this folder: run as a script, it is on sys.path

from nichetune.quiet import quiet_libraries

HERE = Path(__file__).resolve().parent
BUILT_INS = ("bbc-news", "drug-reviews", "foldoc-subjects")
BASELINES = ("tfidf-logreg", "tfidf-svm")


def _child(cmd: list[str], log: Path) -> dict:
    """Run ``cmd``; its wall seconds and its own peak RSS (MB), output to ``log`` (see ``child_peak``)."""
    result = run_measured(cmd, log)
    if result.pop("code") != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed; see {log}")
    log.with_suffix(".usage.json").write_text(json.dumps(result))
    return result


def _usage(log: Path) -> dict:
    """What ``_child`` measured for the command that wrote ``log`` (a rerun reuses the step), or nothing."""
    path = log.with_suffix(".usage.json")
    return json.loads(path.read_text()) if path.is_file() else {}


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _intervals(y: np.ndarray, pred: np.ndarray, labels: list[str], seed: int = 0) -> dict:
    from nichetune.stats.classification import classification_metrics
    from nichetune.stats.significance import bootstrap_ci

    out = {}
    for metric in ("accuracy", "macro_f1"):
        def value(idx: np.ndarray, metric=metric) -> float:
            return classification_metrics(y[idx], pred[idx], labels)[metric]
        low, high = bootstrap_ci(value, len(y), seed=seed)
        out[metric] = {"value": value(np.arange(len(y))), "ci_low": low, "ci_high": high}
    return out


def baseline_main(kind: str, train: Path, validation: Path, test: Path, out: Path, seed: int) -> int:
    """One baseline fitted in this process: predictions on ``test`` and the fit seconds, written to ``out``."""
    from nichetune.tasks.lexical import fit_lexical

    tr, te = _rows(train), _rows(test)
    labels = sorted({r["label"] for r in tr + _rows(validation) + te})
    start = time.perf_counter()
    if kind.startswith("tfidf-"):
        model = fit_lexical([r["text"] for r in tr], np.array([labels.index(r["label"]) for r in tr]), len(labels),
                            kinds=(kind.removeprefix("tfidf-"),))
        fit_s = time.perf_counter() - start
        pred = model.predict([r["text"] for r in te])
    else:
        sys.path.insert(0, str(HERE))
        from setfit_style import setfit_style

        pred, fit_s = setfit_style(tr, [r["text"] for r in te], labels, seed=seed)
    out.write_text(json.dumps({"fit_s": round(fit_s, 1), "predictions": [labels[i] for i in pred]}))
    return 0


def _score(labels: list[str], test: list[dict], predicted: list[str]) -> dict:
    y = np.array([labels.index(r["label"]) for r in test])
    return _intervals(y, np.array([labels.index(p) for p in predicted]), labels)


def _few_shot_split(run: Path, work: Path, k: int, seed: int) -> dict[str, Path]:
    rng = np.random.default_rng(seed)
    paths = {}
    for split in ("train", "validation"):
        rows = _rows(run / "data" / f"{split}.jsonl")
        picked = []
        for label in sorted({r["label"] for r in rows}):
            pool = [r for r in rows if r["label"] == label]
            picked += [pool[i] for i in sorted(rng.choice(len(pool), size=min(k, len(pool)), replace=False))]
        paths[split] = work / f"few-{k}-{split}.jsonl"
        paths[split].write_text("".join(json.dumps(r) + "\n" for r in picked))
    paths["test"] = run / "data" / "test.jsonl"
    return paths


def _fit_seconds(manifest: dict) -> float:
    """The training loop's seconds plus the contrastive, head-fitting, lexical and zero-shot-prior stages' (model
    loading excluded, as for the baselines)."""
    r = manifest["result"]
    stages = ("contrastive", "head_fit", "lexical", "zero_shot_prior")
    return r["train_seconds"] + sum((r.get(stage) or {}).get("seconds", 0.0) for stage in stages)


def _predicted(run: Path) -> list[str]:
    return [r["predicted"] for r in _rows(run / "eval" / "predictions.jsonl")]


# The table reads quality only: the latency of every export variant (10 minutes of a 2-core machine for a bbc-news
# run at 512 tokens) belongs to `nichetune eval` itself; the prompted and zero-shot baselines are this file's own.
EVAL_ARGS = ("--no-latency", "--no-zero-shot")


def _after_training(path: Path, run: Path) -> bool:
    """``path`` exists and was written after ``run`` trained: a step a benchmark rerun after a kill reuses."""
    return path.is_file() and path.stat().st_mtime >= (run / "manifest.json").stat().st_mtime


def _nichetune(*args: str) -> list[str]:
    return [sys.executable, "-m", "nichetune", *args]


def run_dataset(name: str, work: Path, seed: int, budget: float, few_shot: int | None,
                overrides: tuple[str, ...] = ()) -> dict:
    """recommend -> train -> eval for one dataset and seed, then every baseline on the run's own splits.
    ``overrides`` (KEY=VALUE) change the recommended recipe when it is trained: a variant measured beside it."""
    work.mkdir(parents=True, exist_ok=True)
    recipe, run = work / "recipe.yaml", work / "run"
    out: dict = {"dataset": name, "seed": seed, "overrides": list(overrides)}
    out["recommend"] = _child(_nichetune("recommend", "--data", name, "--budget-minutes", str(budget), "--out",
                                         str(recipe), "--output-dir", str(run)), work / "recommend.log")
    out["estimate"] = next((line.removeprefix("# Estimated training time: ") for line in recipe.read_text().splitlines()
                            if line.startswith("# Estimated training time: ")), None)
    if not (run / "manifest.json").is_file():
        out["train"] = _child(_nichetune("train", str(recipe), f"seed={seed}", *overrides), work / "train.log")
    if not _after_training(run / "eval" / "metrics.json", run):
        out["eval"] = _child(_nichetune("eval", str(run), *EVAL_ARGS), work / "eval.log")
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    test = _rows(run / "data" / "test.jsonl")
    labels = metrics["labels"]
    preds = _predicted(run)
    manifest = json.loads((run / "manifest.json").read_text())
    out["tuned"] = {**_score(labels, test, preds), "fit_s": _fit_seconds(manifest),
                    "peak_mb": _usage(work / "train.log").get("peak_mb"), "inputs": metrics.get("inputs"),
                    "lexical": manifest["result"].get("lexical"),
                    "verdicts": {c["id"]: c["verdict"] for c in metrics["comparisons"]}}
    out["recipe"] = json.loads(json.dumps(manifest["method"]))
    splits = {s: run / "data" / f"{s}.jsonl" for s in ("train", "validation", "test")}
    for kind in BASELINES:
        result = work / f"{kind}.json"
        if _after_training(result, run):
            got = json.loads(result.read_text())  # fitted on this run's splits before a kill
        else:
            _child([sys.executable, __file__, "--baseline", kind, *map(str, splits.values()), str(result), "--seed",
                    str(seed)], work / f"{kind}.log")
            got = json.loads(result.read_text())
        out[kind] = {**_score(labels, test, got["predictions"]), "fit_s": got["fit_s"],
                     "peak_mb": _usage(work / f"{kind}.log").get("peak_mb")}
    out["zero-shot"] = _zero_shot(run, labels, test)
    if few_shot:
        out["few_shot"] = run_few_shot(run, work, few_shot, seed, labels, test)
    return out


def _zero_shot(run: Path, labels: list[str], test: list[dict]) -> dict:
    """The base model zero-shot, an encoder's labels worded as `eval`'s baseline words them (chosen on the run's
    training rows; the choice is its fit time)."""
    from nichetune.eval.classify_run import base_wording, zero_shot

    base = json.loads((run / "manifest.json").read_text())["base_model"]["reference"]
    start = time.perf_counter()
    wording = base_wording(base, labels, _rows(run / "data" / "train.jsonl"))
    fit_s = time.perf_counter() - start
    pred = zero_shot(base, [r["text"] for r in test], labels, wording=wording)
    return {**_score(labels, test, [labels[i] for i in pred]), "fit_s": round(fit_s, 1),
            "predict_s": time.perf_counter() - start - fit_s, "wording": wording.template if wording else None}


def run_few_shot(run: Path, work: Path, k: int, seed: int, labels: list[str], test: list[dict]) -> dict:
    """nichetune's few-shot path (recommend on k rows per label -> train) against SetFit-style on the same rows."""
    paths = _few_shot_split(run, work, k, seed)
    recipe, few_run = work / f"few-{k}.yaml", work / f"few-{k}-run"
    _child(_nichetune("recommend", "--data", str(paths["train"]), "--out", str(recipe), "--output-dir", str(few_run),
                      "--no-estimate"), work / f"few-{k}-recommend.log")
    usage = _child(_nichetune("train", str(recipe), f"seed={seed}", f"data.validation={paths['validation']}",
                              f"data.test={paths['test']}"), work / f"few-{k}-train.log")
    manifest = json.loads((few_run / "manifest.json").read_text())
    _child(_nichetune("eval", str(few_run), *EVAL_ARGS), work / f"few-{k}-eval.log")
    preds = _predicted(few_run)
    result = work / f"few-{k}-setfit.json"
    setfit_usage = _child([sys.executable, __file__, "--baseline", "setfit-style", str(paths["train"]),
                           str(paths["validation"]), str(paths["test"]), str(result), "--seed", str(seed)],
                          work / f"few-{k}-setfit.log")
    got = json.loads(result.read_text())
    return {"k": k, "nichetune": {**_score(labels, test, preds), "fit_s": _fit_seconds(manifest),
                                  "peak_mb": usage["peak_mb"], "method": manifest["method"]},
            "setfit-style": {**_score(labels, test, got["predictions"]), "fit_s": got["fit_s"],
                             "peak_mb": setfit_usage["peak_mb"]}}


def _cell(entries: list[dict], metric: str) -> str:
    values = [e[metric]["value"] for e in entries]
    if len(values) == 1:
        e = entries[0][metric]
        return f"{e['value']:.3f} ({e['ci_low']:.3f}-{e['ci_high']:.3f})"
    return f"{np.mean(values):.3f} [{min(values):.3f}-{max(values):.3f}]"


def table(results: list[dict]) -> str:
    """One markdown row per dataset and model: accuracy and macro-F1 (95% CI, or mean [min-max] over seeds)."""
    lines = ["| dataset | model | accuracy | macro-F1 | fit s | peak MB |", "|---|---|---|---|---|---|"]
    for name in dict.fromkeys(r["dataset"] for r in results):
        runs = [r for r in results if r["dataset"] == name]
        for key, label in (("tuned", "nichetune recommended"), ("tfidf-logreg", "TF-IDF + logistic regression"),
                           ("tfidf-svm", "TF-IDF + linear SVM"), ("zero-shot", "zero-shot base")):
            entries = [r[key] for r in runs]
            fit = np.mean([e["fit_s"] for e in entries])
            peak = max((e.get("peak_mb") or 0) for e in entries)
            lines.append(f"| {name} | {label} | {_cell(entries, 'accuracy')} | {_cell(entries, 'macro_f1')} | "
                         f"{fit:.0f} | {peak or ''} |")
        if "few_shot" in runs[0]:
            few = [x["few_shot"] for x in runs]
            for key, label in (("nichetune", f"nichetune few-shot ({few[0]['k']}/label)"),
                               ("setfit-style", f"SetFit-style ({few[0]['k']}/label)")):
                entries = [f[key] for f in few]
                lines.append(f"| {name} | {label} | {_cell(entries, 'accuracy')} | {_cell(entries, 'macro_f1')} | "
                             f"{np.mean([e['fit_s'] for e in entries]):.0f} | "
                             f"{max(e['peak_mb'] for e in entries)} |")
    return "\n".join(lines)


def main() -> int:
    quiet_libraries()  # as the CLI does: torchao's CUDA-library notices would bury the figures
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="*", default=list(BUILT_INS), help="built-in dataset names")
    p.add_argument("--data", nargs="*", default=[], help="labelled JSONL files (text, label)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--budget-minutes", type=float, default=25.0, help="passed to recommend for every dataset")
    p.add_argument("--few-shot", type=int, metavar="K", help="also compare the few-shot path at K rows per label")
    p.add_argument("--few-shot-on", nargs="*", default=["bbc-news", "drug-reviews"],
                   help="the datasets the few-shot comparison runs on (SetFit-style pairs grow with labels x K)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="train a variant of the recommended recipe, e.g. method.name=full train.lr=1.5e-4 "
                        "(give it its own --work and --out)")
    p.add_argument("--work", default="benchmarks/work/quality", help="runs and logs (reused when present)")
    p.add_argument("--out", default="benchmarks/results/quality.json")
    p.add_argument("--baseline", nargs=5, metavar=("KIND", "TRAIN", "VALIDATION", "TEST", "OUT"),
                   help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.baseline:
        kind, *files = args.baseline
        return baseline_main(kind, *map(Path, files), seed=args.seed)
    results = []
    for name in [*args.datasets, *args.data]:
        for seed in args.seeds:
            slug = Path(name).stem if name.endswith(".jsonl") else name
            print(f"{slug} seed {seed} ...", file=sys.stderr, flush=True)
            results.append(run_dataset(str(Path(name).resolve()) if name.endswith(".jsonl") else name,
                                       Path(args.work) / f"{slug}-s{seed}", seed, args.budget_minutes,
                                       args.few_shot if name in args.few_shot_on else None, tuple(args.set)))
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    text = table(results)
    Path(args.out).with_suffix(".md").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

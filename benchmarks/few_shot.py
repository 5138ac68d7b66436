"""Few-shot, over several samples: nichetune's few-shot path against a SetFit-style model on the same k rows a label.

    .venv/bin/python benchmarks/few_shot.py --datasets drug-reviews bbc-news --seeds 0 1 2 --k 8

For each dataset and seed: k rows a label for training and k for validation, drawn from the whole built-in dataset,
and 300 other rows for test. nichetune runs `recommend` on the training rows (the few-shot path it picks: full
fine-tuning of MiniLM after a contrastive pair stage; told of the validation and test rows), `train`, and `eval`;
`setfit_style.py` fits on the same training rows (it takes no validation rows, as SetFit's default trainer doesn't).
Both are scored on the same test rows: accuracy and macro-F1 with 95% bootstrap intervals, and a paired bootstrap
of nichetune minus SetFit-style on macro-F1. Fit time is the training loop plus the contrastive and head stages for
nichetune (model loading left out, as for SetFit-style). Unlike `quality.py --few-shot`, no full recommended run is
trained first, so many samples are affordable. Results: benchmarks/results/few-shot.json (and .md).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from quality import EVAL_ARGS, _child, _fit_seconds, _nichetune, _predicted, _rows, _score  # this folder is on sys.path

from nichetune.quiet import quiet_libraries

HERE = Path(__file__).resolve().parent
TEST_ROWS = 300


def draw(name: str, k: int, seed: int) -> dict[str, list[dict]]:
    """k rows a label for train, k for validation (fewer where a label has fewer), then ``TEST_ROWS`` others."""
    from nichetune.data.catalog import load_dataset
    from nichetune.data.split import first_per_label

    rows = [{"text": r["text"], "label": r["label"]} for r in load_dataset(name)]
    order = np.random.default_rng(seed).permutation(len(rows))
    labels = [r["label"] for r in rows]
    picked = {"train": first_per_label(labels, k, order)}
    picked["validation"] = first_per_label(labels, k, order, skip=set(picked["train"]))
    used = set(picked["train"]) | set(picked["validation"])
    picked["test"] = [int(i) for i in order if i not in used][:TEST_ROWS]
    return {split: [rows[i] for i in idx] for split, idx in picked.items()}


def _last_json(log: Path) -> dict | None:
    lines = log.read_text().splitlines() if log.exists() else []
    return next((json.loads(line) for line in reversed(lines) if line.startswith("{")), None)


def run_sample(name: str, k: int, seed: int, work: Path, overrides: tuple[str, ...] = (), tag: str = "") -> dict:
    """One sample: the recommended few-shot run (with ``overrides`` on its recipe, in ``run-TAG``) and SetFit-style.
    The sample's rows, recipe and SetFit-style fit are reused when ``work`` already holds them, so a variant costs
    its own fit only; a run is reused when its manifest and evaluation exist."""
    from nichetune.stats.significance import paired_bootstrap

    work.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, rows in draw(name, k, seed).items():
        paths[split] = work / f"{split}.jsonl"
        paths[split].write_text("".join(json.dumps(r) + "\n" for r in rows))
    suffix = f"-{tag}" if tag else ""
    recipe, run = work / f"recipe{suffix}.yaml", work / f"run{suffix}"
    usage = {"peak_mb": None}
    if not (run / "eval" / "predictions.jsonl").exists():
        _child(_nichetune("recommend", "--data", str(paths["train"]), "--validation", str(paths["validation"]),
                          "--test", str(paths["test"]), "--out", str(recipe), "--output-dir", str(run),
                          "--no-estimate"), work / f"recommend{suffix}.log")
        usage = _child(_nichetune("train", str(recipe), f"seed={seed}", *overrides), work / f"train{suffix}.log")
        _child(_nichetune("eval", str(run), *EVAL_ARGS), work / f"eval{suffix}.log")
    manifest = json.loads((run / "manifest.json").read_text())
    setfit_usage = {"peak_mb": None}
    if _last_json(work / "setfit.log") is None:
        setfit_usage = _child([sys.executable, str(HERE / "setfit_style.py"), str(paths["train"]),
                               str(paths["test"]), "--seed", str(seed)], work / "setfit.log")
    got = _last_json(work / "setfit.log")
    test = _rows(paths["test"])
    labels = sorted({r["label"] for r in _rows(paths["train"])} | {r["label"] for r in test})
    y = np.array([labels.index(r["label"]) for r in test])
    ours, theirs = _predicted(run), got["predictions"]
    a, b = [labels.index(p) for p in theirs], [labels.index(p) for p in ours]
    paired = paired_bootstrap(_macro_f1(labels), y, np.array(a), np.array(b))
    return {"dataset": name, "seed": seed, "k": k,
            "nichetune": {**_score(labels, test, ours), "fit_s": _fit_seconds(manifest), "peak_mb": usage["peak_mb"],
                          "method": manifest["method"], "overrides": list(overrides)},
            "setfit-style": {**_score(labels, test, theirs), "fit_s": got["fit_s"],
                             "peak_mb": setfit_usage["peak_mb"]},
            "macro_f1_delta": paired,
            "test_predictions": {"labels": labels, "true": y.tolist(), "setfit-style": a, "nichetune": b}}


def _macro_f1(labels: list[str]):
    from nichetune.stats.classification import classification_metrics

    return lambda t, p: classification_metrics(t, p, labels)["macro_f1"]


def mean_delta(results: list[dict]) -> dict | None:
    """The mean over samples of nichetune's macro-F1 minus SetFit-style's, with a 95% interval and p from a bootstrap
    stratified by sample (rows resampled within each), or None where a result predates the saved predictions."""
    from nichetune.stats.significance import paired_bootstrap

    if not results or any("test_predictions" not in r for r in results):
        return None
    got = [r["test_predictions"] for r in results]
    cat = {key: np.concatenate([g[key] for g in got]) for key in ("true", "setfit-style", "nichetune")}
    groups = np.concatenate([[r["seed"]] * len(r["test_predictions"]["true"]) for r in results])
    return paired_bootstrap(_macro_f1(got[0]["labels"]), cat["true"], cat["setfit-style"], cat["nichetune"],
                            groups=groups)


def table(results: list[dict]) -> str:
    lines = ["| dataset | seed | nichetune macro-F1 | SetFit-style macro-F1 | delta (95% CI, p) | fit s (ours / "
             "theirs) |", "|---|---|---|---|---|---|"]
    for r in results:
        n, s, d = r["nichetune"], r["setfit-style"], r["macro_f1_delta"]
        lines.append(f"| {r['dataset']} | {r['seed']} | {n['macro_f1']['value']:.3f} | {s['macro_f1']['value']:.3f} "
                     f"| {d['delta']:+.3f} ({d['ci_low']:+.3f} to {d['ci_high']:+.3f}, p = {d['p_value']:.3f}) | "
                     f"{n['fit_s']:.0f} / {s['fit_s']:.0f} |")
    for name in dict.fromkeys(r["dataset"] for r in results):
        deltas = [r["macro_f1_delta"]["delta"] for r in results if r["dataset"] == name]
        mean = mean_delta([r for r in results if r["dataset"] == name])
        delta = f"{np.mean(deltas):+.3f}" + (f" ({mean['ci_low']:+.3f} to {mean['ci_high']:+.3f}, p = "
                                             f"{mean['p_value']:.3f}; stratified by sample)" if mean else "")
        lines.append(f"| {name} | mean of {len(deltas)} | | | {delta} | |")
    return "\n".join(lines) + "\n"


def main() -> int:
    quiet_libraries()  # as the CLI does: torchao's CUDA-library notices would bury the figures
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["drug-reviews", "bbc-news"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--k", type=int, default=8, help="rows a label for training (and as many for validation)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="overrides on nichetune's recommended recipe (an A/B on the same samples), e.g. "
                        "train.label_anchors=true")
    p.add_argument("--tag", default="", help="names the variant's run folder, so the default's run is kept")
    p.add_argument("--work", default="benchmarks/work/few-shot")
    p.add_argument("--out", default="benchmarks/results/few-shot.json")
    args = p.parse_args()
    results = []
    for name in args.datasets:
        for seed in args.seeds:
            results.append(run_sample(name, args.k, seed, Path(args.work) / f"{name}-{seed}", tuple(args.set),
                                      args.tag))
            print(table(results[-1:]), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    out.with_suffix(".md").write_text(table(results))
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

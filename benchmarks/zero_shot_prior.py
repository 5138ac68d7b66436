"""A tuned few-shot run with the untrained base model's worded zero-shot added as a prior, on `few_shot.py`'s samples.

    .venv/bin/python benchmarks/zero_shot_prior.py --datasets drug-reviews --seeds 0 1 2 3 4 5 6 7 8 --tag wisepre

For each sample that `few_shot.py` ran (its rows and run folder under `--work`; `--tag` names the variant's run,
`run-TAG`), the run classifies the validation and test rows through `nichetune.classify` (the product's path), and
the base model classifies them zero-shot with the labels worded as `eval`'s baseline words them (chosen on the
training rows). The ensemble adds beta x the zero-shot log-probabilities to the run's: at beta = 1, and at the beta of
`BETAS` with the best validation macro-F1 (24 rows; ties keep the smaller). Beside them, SetFit-style's test macro-F1
from the sample's `setfit.log`. No training: a sample costs two passes over its rows. This is a measurement, not a
product feature: the prior needs the base encoder beside the tuned one wherever the run is served or exported.
Results: benchmarks/results/zero-shot-prior.json (and .md).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from few_shot import _last_json  # this folder is on sys.path
from quality import _rows

from nichetune.quiet import quiet_libraries

HERE = Path(__file__).resolve().parent
BETAS = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0)


def _log_probs(predictions, labels: list[str]) -> np.ndarray:
    return np.log(np.clip([[p.scores[name] for name in labels] for p in predictions], 1e-12, None))


def run_sample(work: Path, run: Path, model: str) -> dict:
    from nichetune.eval.classify_run import base_wording
    from nichetune.infer.classify import classify
    from nichetune.stats.classification import classification_metrics

    train, split = _rows(work / "train.jsonl"), {s: _rows(work / f"{s}.jsonl") for s in ("validation", "test")}
    labels = json.loads((run / "manifest.json").read_text())["labels"]
    wording = base_wording(model, labels, train)
    y = {s: np.array([labels.index(r["label"]) for r in rows]) for s, rows in split.items()}
    tuned = {s: _log_probs(classify(str(run), [r["text"] for r in rows]), labels) for s, rows in split.items()}
    prior = {s: _log_probs(classify(model, [r["text"] for r in rows], labels=wording.of(labels)), labels)
             for s, rows in split.items()}

    def f1(s: str, beta: float) -> float:
        return classification_metrics(y[s], (tuned[s] + beta * prior[s]).argmax(1), labels)["macro_f1"]

    chosen = max(BETAS, key=lambda b: (f1("validation", b), -b))
    zero_shot = classification_metrics(y["test"], prior["test"].argmax(1), labels)["macro_f1"]
    setfit = _last_json(work / "setfit.log")
    setfit_f1 = classification_metrics(y["test"], np.array([labels.index(p) for p in setfit["predictions"]]),
                                       labels)["macro_f1"] if setfit else None
    return {"sample": work.name, "run": run.name, "template": wording.template, "tuned": f1("test", 0.0),
            "zero_shot": zero_shot, "ensemble_beta_1": f1("test", 1.0), "beta_chosen": chosen,
            "ensemble_beta_chosen": f1("test", chosen),
            "setfit_style": setfit_f1}


def markdown(results: list[dict]) -> str:
    keys = ("tuned", "zero_shot", "ensemble_beta_1", "ensemble_beta_chosen", "setfit_style")
    lines = ["| sample | run | tuned | zero-shot (worded) | tuned + zero-shot (beta 1) | tuned + zero-shot (beta on "
             "validation) | SetFit-style |", "|---|---|---|---|---|---|---|"]
    for r in results:
        cells = [f"{r[k]:.3f}" if r[k] is not None else "-" for k in keys]
        cells[3] += f" (beta {r['beta_chosen']:g})"
        lines.append(f"| {r['sample']} | {r['run']} | " + " | ".join(cells) + " |")
    if results:
        means = [np.mean([r[k] for r in results]) if all(r[k] is not None for r in results) else None for k in keys]
        lines.append(f"| mean of {len(results)} | | " + " | ".join(f"{m:.3f}" if m is not None else "-" for m in means)
                     + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    quiet_libraries()
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["drug-reviews"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--tag", default="", help="the variant's run folder, run-TAG (default: the recommended run)")
    p.add_argument("--model", default="minilm-l6")
    p.add_argument("--work", default=str(HERE / "work" / "few-shot"))
    p.add_argument("--out", default=str(HERE / "results" / "zero-shot-prior.json"))
    args = p.parse_args()
    results = []
    for name in args.datasets:
        for seed in args.seeds:
            work = Path(args.work) / f"{name}-{seed}"
            run = work / (f"run-{args.tag}" if args.tag else "run")
            if not (run / "manifest.json").exists():
                print(f"skipped {work.name}: no {run.name} (run few_shot.py first)", flush=True)
                continue
            results.append(run_sample(work, run, args.model))
            print(json.dumps(results[-1]), flush=True)
    out = Path(args.out)
    out.write_text(json.dumps(results, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(results))
    print(markdown(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

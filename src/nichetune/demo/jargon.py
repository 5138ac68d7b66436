"""Demo part 2: computing jargon, LoRA instruction tuning of SmolLM2 on FOLDOC definitions.

The split is grouped by term, so no term is in two splits; evaluation compares response perplexity,
term use and general-domain perplexity (forgetting) with the base model, and shows answers for
held-out terms side by side.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import yaml

from ..run.paths import RunPaths
from .runs import evaluate_or_reuse, train_or_reuse
from .steps import SKIPPED, Steps

RUN = "foldoc-sft-lora"
STEPS = 2
# The shipped configs/foldoc-sft-lora.yaml with the demo's paths; the budget sets the sizes.
RECIPE = {
    "task": "sft",
    "seed": 0,
    "model": {"name": "smollm2-135m-instruct", "max_length": 256},
    "data": {"dataset": "foldoc", "split": {"ratios": [0.8, 0.1, 0.1], "group_field": "group"}, "eval_limit": 100},
    "method": {"name": "lora", "r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"},
    "train": {"epochs": 2, "batch_size": 4, "lr": 5.0e-4, "warmup": 0.1, "schedule": "cosine", "packing": True,
              "loss_on": "assistant", "precision": "auto", "log_every": 5, "max_batch_tokens": 512},
    "eval": {"metric": "loss", "batch_size": 16},
}
HEADER = ("# Written by `nichetune demo`: LoRA instruction tuning of SmolLM2-135M-Instruct on FOLDOC\n"
          "# \"What does X mean in computing?\" pairs, split by term (group = the term).\n")


def run_jargon(steps: Steps, out: Path, budget, *, fresh: bool) -> dict:
    from ..atomic import atomic_write_text
    from ..config.recipe import load_recipe

    run_dir = out / "runs" / RUN
    recipe_file = out / "recipes" / f"{RUN}.yaml"
    recipe_file.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(recipe_file, HEADER + yaml.safe_dump({**RECIPE, "output_dir": str(run_dir)}, sort_keys=False))
    overrides = list(budget.jargon)
    result: dict = {"runs": {}, "report": RunPaths(run_dir).report}
    manifest = steps.run(
        "LoRA instruction tuning of smollm2-135m-instruct on a few hundred FOLDOC pairs (split by term)",
        lambda: train_or_reuse(load_recipe(recipe_file, overrides), fresh=fresh, say=steps.say),
        command=f"nichetune train {recipe_file} {' '.join(overrides)}".strip())
    if manifest is not SKIPPED:
        result["runs"][RUN] = {"manifest": manifest, "label": "LoRA instruction tuning"}
    result["metrics"] = steps.run(
        "evaluate against the base model: perplexity, term use, forgetting, answers side by side",
        lambda: _evaluate(run_dir, budget, fresh, steps.say), needs=(manifest,),
        command=f"nichetune eval {run_dir} --samples {budget.samples} --general-rows {budget.general_rows} "
                "--no-latency")
    return result


def _evaluate(run_dir: Path, budget, fresh: bool, say) -> dict:
    metrics = evaluate_or_reuse(run_dir, fresh=fresh, say=say, samples=budget.samples, latency=False,
                                general_rows=budget.general_rows)
    ppl = metrics["perplexity"]
    say(f"  held-out response perplexity {ppl['base']['perplexity']:.2f} (base) -> "
        f"{ppl['tuned']['perplexity']:.2f} (tuned) on {metrics['n']} definitions of unseen terms")
    if "forgetting" in metrics:
        f = metrics["forgetting"]
        say(f"  general-domain perplexity {f['base']['perplexity']:.2f} -> {f['tuned']['perplexity']:.2f} "
            f"({f['text']})")
    for item in metrics.get("side_by_side", [])[:3]:
        say(f"  Q: {item['prompt']}")
        for who in ("reference", "base", "tuned"):
            say(f"     {who:>9}: " + textwrap.shorten(item[who] or "(nothing)", 120, placeholder=" ..."))
    return metrics

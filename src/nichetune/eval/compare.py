"""``nichetune compare A B``: a run against another run or its base model, on identical inputs.

The candidate ``A`` is a run directory; the reference ``B`` is another run directory or
``base`` (A's untuned base model: zero-shot for classifiers). The rows are A's test split or
``--data``. Classifiers get accuracy and macro-F1 deltas with paired bootstrap intervals and
McNemar's test; generators get response perplexity, answer ROUGE-L / token F1 / term recall on
the same prompts and a forgetting check. Either way one plain verdict sentence comes out, and
the result is written to ``A/eval/compare-NAME.json`` so A's report shows it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ..atomic import atomic_write_text
from ..errors import NichetuneError
from ..run.paths import RunPaths
from ..stats.significance import verdict
from ..tasks import task_spec


def _name(ref: str) -> str:
    return "base model" if ref == "base" else Path(ref).name


def compare_path(run_dir: Path, reference: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", _name(reference)).strip("-") or "reference"
    return RunPaths(run_dir).comparison(slug)


def _classifier_predictions(run_dir: str | Path, texts: list[str], labels: list[str]) -> np.ndarray:
    from ..run.loading import load_run
    from .classify_run import head_logits

    run = load_run(run_dir)
    if run.manifest.labels != labels:
        raise NichetuneError(f"{run_dir} predicts {run.manifest.labels}, the candidate {labels}",
                             hint="compare runs trained on the same label set")
    # with the run's lexical stack where it has one: the predictions its report, `classify` and the server give
    return head_logits(run.model, run.tokenizer, texts, max_length=run.recipe.model.max_length,
                       lexical=run.lexical).argmax(1)


def _compare_classification(run_dir: Path, reference: str, rows: list[dict], manifest, recipe) -> dict:
    from ..data.readers import read_json_lines
    from ..stats.classification import macro_f1_for
    from .classify_run import base_wording, compare_predictions, zero_shot
    from .slices import accuracy

    labels = manifest.labels
    texts = [r["text"] for r in rows]
    y = np.array([labels.index(r["label"]) for r in rows])
    cand = _classifier_predictions(run_dir, texts, labels)
    if reference == "base":  # worded as eval's zero-shot baseline is: the same predictions, the same verdict
        base = manifest.base_model.reference
        train = RunPaths(run_dir).split("train")
        wording = base_wording(base, labels, read_json_lines(train) if train.is_file() else [])
        ref = zero_shot(base, texts, labels, wording=wording)
    else:
        ref = _classifier_predictions(reference, texts, labels)
    macro_f1 = macro_f1_for(labels)
    c = compare_predictions(_name(reference), y, ref, cand, macro_f1, b=run_dir.name,
                            metric=recipe.headline_metric())
    f1 = c["bootstrap_macro_f1"]
    metrics = {"accuracy": {"a": accuracy(y, cand), "b": c["baseline_accuracy"],
                            **{k: c["bootstrap"][k] for k in ("delta", "ci_low", "ci_high", "p_value")}},
               "macro_f1": {"a": macro_f1(y, cand), "b": c["baseline_macro_f1"],
                            **{k: f1[k] for k in ("delta", "ci_low", "ci_high", "p_value")}}}
    test = c["mcnemar"]
    differ = np.flatnonzero(cand != ref)
    examples = [{"id": rows[i].get("id"), "label": rows[i]["label"], run_dir.name: labels[cand[i]],
                 _name(reference): labels[ref[i]], "text": texts[i][:240]} for i in differ[:20]]
    return {"metrics": metrics, "mcnemar": {"only_candidate_correct": test["only_b_correct"],
                                            "only_reference_correct": test["only_a_correct"],
                                            "p_value": test["p_value"], "exact": test["exact"]},
            "agreement": float((cand == ref).mean()), "examples": examples,
            **{k: c[k] for k in ("metric", "verdict", "sentence", "delta", "p_value")}}


def _compare_generation(run_dir: Path, reference: str, rows: list[dict], samples: int) -> dict:
    from .generate_run import evaluate_generation

    g = evaluate_generation(run_dir, rows, samples=samples, reference=None if reference == "base" else reference)
    ppl = g["perplexity"]
    metrics = {"response perplexity": {"a": ppl["tuned"]["perplexity"], "b": ppl["base"]["perplexity"],
                                       "delta": ppl["tuned"]["perplexity"] - ppl["base"]["perplexity"]}}
    out: dict = {}
    if "answers" in g:
        a = g["answers"]
        boot = a["rouge_l_delta"]
        metrics["ROUGE-L"] = {"a": a["tuned"]["rouge_l"], "b": a["base"]["rouge_l"], "delta": boot["delta"],
                              "ci_low": boot["ci_low"], "ci_high": boot["ci_high"], "p_value": boot["p_value"]}
        for key in ("token_f1", "exact_match", "term_recall"):
            metrics[key] = {"a": a["tuned"][key], "b": a["base"][key], "delta": a["tuned"][key] - a["base"][key]}
        v = verdict("ROUGE-L", boot["delta"], boot["ci_low"], boot["ci_high"], boot["p_value"], a=_name(reference),
                    b=run_dir.name)
        out["examples"] = [{"prompt": s["prompt"], "reference": s["reference"], run_dir.name: s["tuned"],
                            _name(reference): s["base"]} for s in g["side_by_side"]]
    else:
        lower = metrics["response perplexity"]["delta"] < 0
        v = {"verdict": "lower perplexity" if lower else "not lower perplexity",
             "sentence": f"{run_dir.name} has {'lower' if lower else 'higher'} response perplexity than "
                         f"{_name(reference)} ({ppl['tuned']['perplexity']:.3f} vs {ppl['base']['perplexity']:.3f})."}
    if "forgetting" in g:
        f = g["forgetting"]
        metrics["general-domain perplexity"] = {"a": f["tuned"]["perplexity"], "b": f["base"]["perplexity"],
                                                "delta": f["tuned"]["perplexity"] - f["base"]["perplexity"]}
    return {"metrics": metrics, **out, **v}


def compare(candidate: str | Path, reference: str = "base", *, data: str | None = None, samples: int = 20) -> dict:
    """Compare run ``candidate`` with ``reference`` (a run directory or ``base``); write and return the result."""
    from ..run.loading import read_run
    from .run import _rows

    run_dir = Path(candidate)
    manifest, recipe = read_run(run_dir)
    if reference != "base":
        _, other = read_run(reference)
        if other.task != recipe.task:
            raise NichetuneError(f"{run_dir} is a {recipe.task} run and {reference} a {other.task} run",
                                 hint="compare runs of the same task, or a run with `base`")
    rows, source = _rows(run_dir, data, recipe.task)
    if task_spec(recipe.task).labelled:
        result = _compare_classification(run_dir, reference, rows, manifest, recipe)
    else:
        result = _compare_generation(run_dir, reference, rows, samples)
    result = {"a": run_dir.name, "b": _name(reference), "reference": reference, "n": len(rows), "data": source,
              "task": recipe.task, **result}
    atomic_write_text(compare_path(run_dir, reference), json.dumps(result, indent=1) + "\n")
    from .run import render_report

    if RunPaths(run_dir).eval_metrics.is_file():
        render_report(run_dir)
    return result

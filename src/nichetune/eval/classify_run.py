"""Evaluate a classification run: metrics, baselines, calibration, conformal sets, slices, errors.

Temperature and conformal thresholds are fitted on the run's validation split and applied to
the test split (or ``--data``); baselines are trained on the run's own train split, so every
comparison uses identical inputs.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from ..data.readers import read_json_lines
from ..stats.significance import mcnemar, paired_bootstrap, verdict
from ..tasks.scoring import classifier_logits as head_logits
from .evaluators import ClassifierInputs, run_evaluators
from .slices import accuracy


def lexical_baseline(x: ClassifierInputs):
    """The strongest lexical model a practitioner tries first: TF-IDF + logistic regression or + a linear SVM,
    whichever scores higher on the run's validation rows by the verdict metric (``tasks.lexical.LexicalModel``)."""
    from ..tasks.lexical import fit_lexical

    def ids(rows: list[dict]) -> np.ndarray:
        return np.array([x.label2id[r["label"]] for r in rows])

    return fit_lexical([r["text"] for r in x.train_rows], ids(x.train_rows), len(x.labels),
                       val_texts=[r["text"] for r in x.val_rows] or None, val_y=ids(x.val_rows),
                       metric=x.macro_f1 if x.metric == "macro_f1" else None)


VERDICT_METRICS = {"accuracy": "accuracy", "macro_f1": "macro-F1"}


def compare_predictions(name: str, y: np.ndarray, base_pred: np.ndarray, pred: np.ndarray, macro_f1,
                        b: str = "the tuned model", metric: str = "accuracy") -> dict:
    """``pred`` against the reference ``base_pred`` on the same rows: paired bootstraps of accuracy and
    macro-F1, McNemar's test, and the verdict on ``metric`` (accuracy: McNemar's p; macro-F1: the
    bootstrap's p, as McNemar counts right/wrong answers only)."""
    boot = paired_bootstrap(accuracy, y, base_pred, pred)
    boot_f1 = paired_bootstrap(macro_f1, y, base_pred, pred)
    test = mcnemar(base_pred == y, pred == y)
    on_accuracy = verdict("accuracy", boot["delta"], boot["ci_low"], boot["ci_high"], test["p_value"], a=name, b=b)
    v = on_accuracy if metric == "accuracy" else verdict(
        VERDICT_METRICS[metric], boot_f1["delta"], boot_f1["ci_low"], boot_f1["ci_high"], boot_f1["p_value"], a=name,
        b=b)
    return {"baseline": name, "metric": metric, "baseline_accuracy": accuracy(y, base_pred),
            "baseline_macro_f1": macro_f1(y, base_pred), "bootstrap": boot, "bootstrap_macro_f1": boot_f1,
            "mcnemar": test, **v, "accuracy_verdict": on_accuracy["verdict"],
            "accuracy_sentence": on_accuracy["sentence"]}


def slice_fields_of(rows: list[dict], requested: list[str] | None) -> list[str]:
    if requested:
        return requested
    common = ("condition", "source", "subject", "slice", "tag")
    return [f for f in common if any(f in r for r in rows)]


def classifier_inputs(run, rows: list[dict], *, alpha: float = 0.1, target_accuracy: float = 0.9,
                      slice_fields: list[str] | None = None, min_count: int = 20, zero_shot: bool = True,
                      shots_per_label: int = 1, prompt_model: str | None = None) -> ClassifierInputs:
    """Score ``rows`` and the run's validation split once; what every classifier evaluator reads."""
    labels = run.manifest.labels
    label2id = {name: i for i, name in enumerate(labels)}
    unknown = sorted({r["label"] for r in rows} - set(labels))
    if unknown:
        from ..errors import DataValidationError

        raise DataValidationError(f"evaluation rows carry labels the run never saw: {unknown}",
                                  hint=f"the run's labels are {labels}")
    max_length = run.recipe.model.max_length
    val_rows = read_json_lines(run.paths.split("validation"))

    def logits_of(part: list[dict]) -> np.ndarray:
        return head_logits(run.model, run.tokenizer, [r["text"] for r in part], max_length=max_length,
                           lexical=run.lexical)

    return ClassifierInputs(
        labels=labels, rows=rows, y=np.array([label2id[r["label"]] for r in rows]), logits=logits_of(rows),
        y_val=np.array([label2id[r["label"]] for r in val_rows]), logits_val=logits_of(val_rows),
        train_rows=read_json_lines(run.paths.split("train")), val_rows=val_rows, alpha=alpha,
        target_accuracy=target_accuracy,
        metric=run.recipe.headline_metric(), slice_fields=slice_fields_of(rows, slice_fields), min_count=min_count,
        zero_shot=zero_shot, shots_per_label=shots_per_label, prompt_model=prompt_model,
        base_reference=run.manifest.base_model.reference, seed=run.recipe.seed)


def evaluate_classification(run_dir: Path, rows: list[dict], **options) -> dict:
    """Every classifier evaluator on ``rows`` (options: see ``classifier_inputs``), as plain numbers."""
    from ..run.loading import load_run

    run = load_run(run_dir)
    x = classifier_inputs(run, rows, **options)
    sections = run_evaluators(run.manifest.head, x)
    metrics = sections["metrics"]
    confidence = x.probs_cal.max(1)
    from ..truncation import seen_share

    return {
        "task": run.recipe.task, "n": len(rows), "labels": x.labels, **sections,
        "inputs": seen_share(run.tokenizer, x.texts, run.recipe.model.max_length),
        "primary": {"name": x.metric, "value": metrics[x.metric]},
        "predictions": [{"id": r.get("id"), "label": r["label"], "predicted": x.labels[p], "confidence": float(c),
                         "probabilities": {name: round(float(v), 6) for name, v in zip(x.labels, probs, strict=True)},
                         "text": r["text"], "slices": {f: r.get(f) for f in x.slice_fields}}
                        for r, p, c, probs in zip(rows, x.pred, confidence, x.probs_cal, strict=True)],
    }


def zero_shot(model: str, texts: list[str], labels: list[str], shots=(), wording=None) -> np.ndarray:
    """A base model on the same texts: label likelihood (decoder) or embedding similarity (encoder), an encoder's
    labels worded by ``wording`` (``infer.label_wording.Wording``) where one is given.

    Cached per process: ``eval`` and ``compare RUN base`` on the same split (as the demo runs them)
    score the base model once."""
    worded = tuple(wording.of(labels).values()) if wording is not None else ()
    return _zero_shot_cached(model, tuple(texts), tuple(labels), tuple(shots), worded).copy()


@functools.lru_cache(maxsize=4)
def _zero_shot_cached(model: str, texts: tuple, labels: tuple, shots: tuple, worded: tuple) -> np.ndarray:
    from ..infer.classify import classify

    candidates = dict(zip(labels, worded, strict=True)) if worded else list(labels)
    preds = classify(model, list(texts), labels=candidates, dtype="auto", shots=shots)
    return np.array([labels.index(p.label) for p in preds])


def base_wording(model: str, labels: list[str], train_rows: list[dict]):
    """The label wording a bare encoder ``model``'s zero-shot baseline uses, chosen on ``train_rows``
    (``infer.label_wording``); None for a causal LM (scored by label likelihood) or a model with its own head."""
    from ..infer.label_wording import choice_rows

    rows = tuple((r["text"], r["label"]) for r in choice_rows([r for r in train_rows if r["label"] in labels]))
    return _base_wording_cached(model, tuple(labels), rows)


@functools.lru_cache(maxsize=4)
def _base_wording_cached(model: str, labels: tuple, rows: tuple):
    from ..infer.classify import sentence_vectors
    from ..infer.label_wording import choose_wording
    from ..infer.loading import resolve
    from ..models.loading import load_encoder

    resolved = resolve(model)
    if resolved.is_causal_lm or resolved.is_sequence_classifier or not rows:
        return None
    encoder, tokenizer = load_encoder(resolved)
    return choose_wording(lambda texts: sentence_vectors(encoder, tokenizer, texts)[0],
                          [{"text": t, "label": y} for t, y in rows], list(labels))


# The instruct model that prompting baselines use when the run's base is an encoder (encoders
# cannot follow in-context examples).
PROMPT_MODEL = "smollm2-135m-instruct"
SHOT_WORDS = 60  # examples are cut to this many words so that k-shot prompts stay short


def pick_shots(train_rows: list[dict], labels: list[str], per_label: int, seed: int) -> list[tuple[str, str]]:
    """``per_label`` training examples of every label, short ones preferred, interleaved by label."""
    rng = np.random.default_rng(seed)
    by_label = []
    for label in labels:
        pool = [r["text"] for r in train_rows if r["label"] == label]
        short = [t for t in pool if len(t.split()) <= SHOT_WORDS] or pool
        picked = rng.choice(len(short), size=min(per_label, len(short)), replace=False)
        by_label.append([(" ".join(short[i].split()[:SHOT_WORDS]), label) for i in sorted(picked)])
    return [shot for group in zip(*by_label, strict=False) for shot in group]


def prompted_baselines(x: ClassifierInputs) -> list[tuple[str, str, np.ndarray]]:
    """Zero- and k-shot prompting of an instruct LM, each label scored by its likelihood:
    ``(stable id, display name, predictions)``."""
    from ..models.resolve import resolve_model

    base = x.base_reference
    model = x.prompt_model or (base if resolve_model(base).is_causal_lm else PROMPT_MODEL)
    shots = pick_shots(x.train_rows, x.labels, x.shots_per_label, x.seed)
    out = [] if model == base else [("zero-shot-prompt", f"zero-shot {model}", zero_shot(model, x.texts, x.labels))]
    out.append(("k-shot-prompt", f"{len(shots)}-shot {model}", zero_shot(model, x.texts, x.labels, shots)))
    return out

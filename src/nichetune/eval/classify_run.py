"""Evaluate a classification run: metrics, baselines, calibration, conformal sets, slices, errors.

Temperature and conformal thresholds are fitted on the run's validation split and applied to
the test split (or ``--data``); baselines are trained on the run's own train split, so every
comparison uses identical inputs.
"""

from __future__ import annotations

import functools
from collections import Counter
from pathlib import Path

import numpy as np

from ..data.readers import read_json_lines
from ..stats.calibration import TemperatureScaler, calibration_metrics, reliability_bins, softmax
from ..stats.conformal import SplitConformal, selective_curve, set_metrics, threshold_for_accuracy
from ..stats.significance import mcnemar, paired_bootstrap, verdict
from .classification import classification_metrics, most_confused_pairs
from .slices import accuracy, length_bucket, slice_metrics


def head_logits(model, tokenizer, texts: list[str], *, max_length: int, batch_size: int = 32) -> np.ndarray:
    """(N, C) logits from a classification head, batched by length, no gradients."""
    import torch

    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    out = np.zeros((len(texts), model.config.num_labels), dtype=np.float64)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = tokenizer([texts[i] for i in idx], padding=True, truncation=True, max_length=max_length,
                              return_tensors="pt").to(next(model.parameters()).device)
            out[idx] = model(**batch).logits.float().cpu().numpy()
    return out


def tfidf_baseline(train: list[dict], test_texts: list[str], label2id: dict[str, int]) -> np.ndarray:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    pipe = make_pipeline(TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True),
                         LogisticRegression(max_iter=2000, C=10.0))
    pipe.fit([r["text"] for r in train], [label2id[r["label"]] for r in train])
    return pipe.predict(test_texts)


def macro_f1_for(labels: list[str]):
    """``macro_f1(y_true, y_pred)`` over the run's full label list (absent labels count as zero F1)."""

    def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        return classification_metrics(y_true, y_pred, labels)["macro_f1"]

    return macro_f1


VERDICT_METRICS = {"accuracy": "accuracy", "macro_f1": "macro-F1"}


def headline_metric(recipe) -> str:
    """The metric a classifier's verdicts are on: the recipe's ``eval.metric`` when it is accuracy or
    macro-F1 (imbalanced data picks macro-F1, where always answering the big class scores well on
    accuracy), else accuracy."""
    return recipe.eval.metric if recipe.eval.metric in VERDICT_METRICS else "accuracy"


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


def _slice_fields(rows: list[dict], requested: list[str] | None) -> list[str]:
    if requested:
        return requested
    common = ("condition", "source", "subject", "slice", "tag")
    return [f for f in common if any(f in r for r in rows)]


def evaluate_classification(run_dir: Path, rows: list[dict], *, alpha: float = 0.1, target_accuracy: float = 0.9,
                            slice_fields: list[str] | None = None, min_count: int = 20, zero_shot: bool = True,
                            shots_per_label: int = 1, prompt_model: str | None = None) -> dict:
    """Everything the report shows for a classifier, as plain numbers (see the module doc)."""
    from ..run.directory import load_run

    model, tokenizer, manifest, recipe = load_run(run_dir)
    labels = manifest["labels"]
    label2id = {name: i for i, name in enumerate(labels)}

    macro_f1 = macro_f1_for(labels)
    unknown = sorted({r["label"] for r in rows} - set(labels))
    if unknown:
        from ..errors import DataValidationError

        raise DataValidationError(f"evaluation rows carry labels the run never saw: {unknown}",
                                  hint=f"the run's labels are {labels}")
    max_length = recipe.model.max_length
    val_rows = read_json_lines(run_dir / "data" / "validation.jsonl")
    train_rows = read_json_lines(run_dir / "data" / "train.jsonl")
    texts = [r["text"] for r in rows]
    y = np.array([label2id[r["label"]] for r in rows])
    y_val = np.array([label2id[r["label"]] for r in val_rows])
    logits = head_logits(model, tokenizer, texts, max_length=max_length)
    logits_val = head_logits(model, tokenizer, [r["text"] for r in val_rows], max_length=max_length)
    probs = softmax(logits)
    pred = probs.argmax(1)

    scaler = TemperatureScaler().fit(logits_val, y_val)
    probs_cal, probs_val_cal = scaler.predict_proba(logits), scaler.predict_proba(logits_val)
    conformal = {}
    for method in ("lac", "aps"):
        cp = SplitConformal(alpha, method).fit(probs_val_cal, y_val)
        conformal[method] = {**set_metrics(cp.predict_sets(probs_cal), y), "qhat": cp.qhat_}
    curve = selective_curve(probs_cal, y)

    majority_label = Counter(r["label"] for r in train_rows).most_common(1)[0][0]
    baselines = {"majority class": np.full(len(y), label2id[majority_label]),
                 "TF-IDF + logistic regression": tfidf_baseline(train_rows, texts, label2id)}
    if zero_shot:
        baselines["zero-shot base model"] = _zero_shot(manifest["base_model"]["reference"], texts, labels)
        if shots_per_label:
            baselines.update(_prompted(manifest, prompt_model, train_rows, texts, labels, shots_per_label,
                                       recipe.seed))
    metric = headline_metric(recipe)
    comparisons = [compare_predictions(name, y, base_pred, pred, macro_f1, metric=metric)
                   for name, base_pred in baselines.items()]

    fields = _slice_fields(rows, slice_fields)
    slices = {f: slice_metrics(y, pred, [r.get(f) for r in rows], min_count=min_count,
                               metrics={"accuracy": accuracy, "macro_f1": macro_f1}) for f in fields}
    slices["length"] = slice_metrics(y, pred, [length_bucket(t) for t in texts], min_count=min_count,
                                     metrics={"accuracy": accuracy, "macro_f1": macro_f1})
    if any(r.get("synthetic") for r in rows):
        slices["synthetic"] = slice_metrics(y, pred, [bool(r.get("synthetic")) for r in rows], min_count=min_count)

    confidence = probs_cal.max(1)
    wrong = np.flatnonzero(pred != y)
    confident_errors = [{"id": rows[i].get("id"), "text": texts[i][:300], "true": labels[y[i]],
                         "predicted": labels[pred[i]], "confidence": float(confidence[i])}
                        for i in wrong[np.argsort(-confidence[wrong])][:10]]
    metrics = classification_metrics(y, pred, labels)
    return {
        "task": "classification", "n": len(rows), "labels": labels, "metrics": metrics,
        "primary": {"name": metric, "value": metrics[metric]},
        "calibration": {"raw": calibration_metrics(probs, y), "temperature_scaled": calibration_metrics(probs_cal, y),
                        "temperature": scaler.temperature_, "reliability_raw": reliability_bins(probs, y, 10),
                        "reliability_scaled": reliability_bins(probs_cal, y, 10)},
        "conformal": {"alpha": alpha, "fitted_on": "validation", **conformal},
        "selective": {"curve": _thin(curve), "target": threshold_for_accuracy(curve, target_accuracy)},
        "comparisons": comparisons, "slices": slices,
        "errors": {"most_confused": most_confused_pairs(metrics["confusion"], labels),
                   "most_confident": confident_errors},
        "predictions": [{"id": r.get("id"), "label": r["label"], "predicted": labels[p], "confidence": float(c),
                         "text": r["text"], "slices": {f: r.get(f) for f in fields}}
                        for r, p, c in zip(rows, pred, confidence, strict=True)],
    }


def _thin(curve: dict, points: int = 50) -> dict:
    n = len(curve["coverage"])
    idx = sorted({min(n - 1, round(i * (n - 1) / (points - 1))) for i in range(points)}) if n else []
    return {k: [v[i] for i in idx] for k, v in curve.items()}


def _zero_shot(model: str, texts: list[str], labels: list[str], shots=()) -> np.ndarray:
    """A base model on the same texts: label likelihood (decoder) or embedding similarity (encoder).

    Cached per process: ``eval`` and ``compare RUN base`` on the same split (as the demo runs them)
    score the base model once."""
    return _zero_shot_cached(model, tuple(texts), tuple(labels), tuple(shots)).copy()


@functools.lru_cache(maxsize=4)
def _zero_shot_cached(model: str, texts: tuple, labels: tuple, shots: tuple) -> np.ndarray:
    from ..infer.classify import classify

    preds = classify(model, list(texts), labels=list(labels), dtype="auto", shots=shots)
    return np.array([labels.index(p.label) for p in preds])


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


def _prompted(manifest: dict, prompt_model: str | None, train_rows, texts, labels, per_label: int, seed: int) -> dict:
    """Zero- and k-shot prompting of an instruct LM, each label scored by its likelihood."""
    from ..models.resolve import resolve_model

    base = manifest["base_model"]["reference"]
    model = prompt_model or (base if resolve_model(base).is_causal_lm else PROMPT_MODEL)
    shots = pick_shots(train_rows, labels, per_label, seed)
    out = {} if model == base else {f"zero-shot {model}": _zero_shot(model, texts, labels)}
    out[f"{len(shots)}-shot {model}"] = _zero_shot(model, texts, labels, shots)
    return out

"""``train.lexical: stack``: after the encoder trains, fit TF-IDF + a linear model on the training split and the
stack weight on validation, and score the stacked classifier on test (what the run will serve)."""

from __future__ import annotations

import numpy as np

from ..stats.calibration import nll, softmax
from ..stats.classification import classification_metrics
from ..tasks.lexical import LexicalStack, fit_lexical, fit_stack
from ..tasks.scoring import autocast_for, classifier_logits


def _y(rows: list[dict], labels: list[str]) -> np.ndarray:
    index = {name: i for i, name in enumerate(labels)}
    return np.array([index[r["label"]] for r in rows])


def stacked_metrics(logits: np.ndarray, y: np.ndarray, labels: list[str]) -> dict[str, float]:
    """What the training loop reports for a classifier (loss, accuracy, macro-F1, examples), from logits."""
    m = classification_metrics(y, logits.argmax(1), labels)
    return {"loss": nll(softmax(logits), y), "accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
            "examples": float(len(y))}


def fit_lexical_stage(model, tokenizer, splits, *, max_length: int, metric: str, dtype, device: str,
                      batch_size: int = 32) -> tuple[LexicalStack, dict | None, dict | None]:
    """The fitted stack, and the encoder's and the stack's test metrics (None without a test split)."""
    from ..stats.classification import macro_f1_for

    labels = splits.labels
    model.eval()  # no dropout: the logits the run will serve
    score = macro_f1_for(labels) if metric == "macro_f1" else None

    def encoder(rows: list[dict]) -> np.ndarray:
        with autocast_for(dtype, device):
            return classifier_logits(model, tokenizer, [r["text"] for r in rows], max_length=max_length,
                                     batch_size=batch_size)

    val_texts = [r["text"] for r in splits.validation]
    lexical = fit_lexical([r["text"] for r in splits.train], _y(splits.train, labels), len(labels),
                          val_texts=val_texts, val_y=_y(splits.validation, labels), metric=score)
    y_val = _y(splits.validation, labels)
    stack = fit_stack(lexical, encoder(splits.validation), lexical.scores(val_texts), y_val, metric=score)
    if not splits.test:
        return stack, None, None
    test_texts, y_test = [r["text"] for r in splits.test], _y(splits.test, labels)
    enc_test = encoder(splits.test)
    return stack, stacked_metrics(enc_test, y_test, labels), stacked_metrics(stack.apply(test_texts, enc_test),
                                                                            y_test, labels)

"""What evaluators read, computed once per evaluation: a classifier's logits and fitted calibration, or a
generator's models, rows and decoded answers."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ...stats.calibration import TemperatureScaler, softmax
from ...stats.classification import macro_f1_for


@dataclass
class ClassifierInputs:
    """A classifier's predictions on the evaluation rows, and what calibration is fitted on (validation).

    Arrays: ``y`` (N,) label ids, ``logits`` (N, C); ``y_val`` (M,), ``logits_val`` (M, C).
    """

    labels: list[str]
    rows: list[dict]
    y: np.ndarray
    logits: np.ndarray
    y_val: np.ndarray
    logits_val: np.ndarray
    train_rows: list[dict] = field(default_factory=list)
    val_rows: list[dict] = field(default_factory=list)  # choose the lexical baseline; empty: logistic regression
    alpha: float = 0.1
    target_accuracy: float = 0.9
    metric: str = "accuracy"  # what verdicts are on: accuracy or macro_f1
    slice_fields: list[str] = field(default_factory=list)
    min_count: int = 20
    zero_shot: bool = False
    shots_per_label: int = 0
    prompt_model: str | None = None
    base_reference: str | None = None
    seed: int = 0

    @property
    def texts(self) -> list[str]:
        return [r["text"] for r in self.rows]

    @property
    def label2id(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.labels)}

    @functools.cached_property
    def probs(self) -> np.ndarray:
        return softmax(self.logits)

    @property
    def pred(self) -> np.ndarray:
        return self.probs.argmax(1)

    @functools.cached_property
    def scaler(self) -> TemperatureScaler:
        return TemperatureScaler().fit(self.logits_val, self.y_val)

    @functools.cached_property
    def probs_cal(self) -> np.ndarray:
        return self.scaler.predict_proba(self.logits)

    @functools.cached_property
    def probs_val_cal(self) -> np.ndarray:
        return self.scaler.predict_proba(self.logits_val)

    @functools.cached_property
    def macro_f1(self):
        """``macro_f1(y_true, y_pred)`` over the run's full label list (the definition every comparison uses)."""
        return macro_f1_for(self.labels)


@dataclass
class GeneratorInputs:
    """A causal-LM run and its reference model on the same rows.

    ``score(model, tokenizer, task, rows)`` gives a model's ``task.metrics`` on rows; ``answer(model,
    tokenizer, rows)`` its greedy answers. Both are injected so evaluators never load a model.
    """

    rows: list[dict]
    tuned: tuple[Any, Any]  # (model, tokenizer)
    base: tuple[Any, Any]
    task: Any  # the run's scoring task (tasks.causal.CausalTask)
    chat: bool
    score: Any
    answer: Any
    plain_text_task: Any = None  # scores general-domain text (forgetting)
    general_rows: list[dict] = field(default_factory=list)
    general_text: str = ""
    samples: int = 20
    glossary: list[str] | None = None
    forbidden: list[str] | None = None

    @functools.cached_property
    def sample(self) -> list[dict]:
        return self.rows[: self.samples]

    @functools.cached_property
    def references(self) -> list[str]:
        return [next(m["content"] for m in reversed(r["messages"]) if m["role"] == "assistant") for r in self.sample]

    @functools.cached_property
    def answers(self) -> dict[str, list[str]]:
        """Greedy answers of both models to the sample's prompts (decoded once, read by several evaluators)."""
        return {"base": self.answer(*self.base, self.sample), "tuned": self.answer(*self.tuned, self.sample)}

    @property
    def terms(self) -> list[str]:
        return self.glossary or sorted({r["term"] for r in self.rows if r.get("term")})

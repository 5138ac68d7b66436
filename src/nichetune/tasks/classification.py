"""Sequence classification: encoding, loss sums and confusion-matrix scoring through the model's head."""

from __future__ import annotations

import torch

from .batching import collate_classification
from .encode import Example, encode_classification
from .loss import classification_loss_sum, inverse_frequency_weights
from .registry import TaskSpec, register_task


class ClassificationTask:
    """Sequence classification through the model's head; weighted, optionally smoothed cross entropy."""

    head = "classification"

    def __init__(self, labels: list[str], *, label_smoothing: float = 0.0, class_weights: bool = False):
        self.labels = labels
        self.label2id = {name: i for i, name in enumerate(labels)}
        self.label_smoothing = label_smoothing
        self.use_class_weights = class_weights
        self.class_weights: torch.Tensor | None = None
        self.width_cap: int | None = None  # the longest encoding: batch widths round up to buckets below it

    def encode(self, rows: list[dict], tokenizer, max_length: int, *, train: bool) -> list[Example]:
        examples = encode_classification(rows, tokenizer, self.label2id, max_length)
        if train and self.use_class_weights:
            self.class_weights = inverse_frequency_weights([e.labels for e in examples], len(self.labels))
        return examples

    def items(self, examples: list[Example], max_length: int, packing: bool) -> list[Example]:
        self.width_cap = max(self.width_cap or 0, max_length)
        return list(examples)

    def units(self, item: Example) -> float:
        weight = item.weight
        if self.class_weights is not None:
            weight *= float(self.class_weights[item.labels])
        return weight

    def collate(self, items: list[Example], pad_id: int) -> dict[str, torch.Tensor]:
        return collate_classification(items, pad_id, self.width_cap)

    def loss_sum(self, model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, float]:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits  # (B, C)
        return classification_loss_sum(logits, batch["labels"], weights=batch["weights"],
                                       class_weights=self.class_weights, label_smoothing=self.label_smoothing)

    @property
    def sums_size(self) -> int:
        return len(self.labels) ** 2 + 1

    def eval_sums(self, model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(C*C + 1,) float64: the confusion matrix (true x predicted) then the NLL sum."""
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.float()
        k = len(self.labels)
        pred = logits.argmax(-1)
        confusion = torch.bincount(batch["labels"] * k + pred, minlength=k * k).double().cpu()
        nll = torch.nn.functional.cross_entropy(logits, batch["labels"], reduction="sum").double().cpu()
        return torch.cat([confusion, nll.reshape(1)])

    def metrics(self, sums: torch.Tensor) -> dict[str, float]:
        k = len(self.labels)
        confusion = sums[: k * k].reshape(k, k)
        n = float(confusion.sum())
        tp = confusion.diag()
        precision = tp / confusion.sum(0).clamp(min=1)
        recall = tp / confusion.sum(1).clamp(min=1)
        f1 = torch.where(precision + recall > 0, 2 * precision * recall / (precision + recall), torch.zeros(k))
        present = (confusion.sum(0) + confusion.sum(1)) > 0  # scikit-learn's macro F1 over labels seen
        return {"loss": float(sums[-1]) / max(n, 1.0), "accuracy": float(tp.sum()) / max(n, 1.0),
                "macro_f1": float(f1[present].mean()) if bool(present.any()) else 0.0, "examples": n}


def _build(labels: list[str] | None, train_cfg, *, virtual_tokens: bool = False) -> ClassificationTask:
    return ClassificationTask(labels or [], label_smoothing=train_cfg.label_smoothing,
                              class_weights=train_cfg.class_weights)


CLASSIFICATION = register_task(TaskSpec(name="classification", head="classification", packable=False,
                                        chat=False, eval_sample=200, primary_metric="accuracy", build=_build))

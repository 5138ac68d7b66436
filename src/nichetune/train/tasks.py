"""What differs between tasks in the loop: encoding, collation, the loss and validation metrics.

A task object turns rows into ``Example`` items, counts each item's supervised units (the
denominator of the step's mean loss), computes a micro-batch's loss *sum*, and reduces
validation batches to sums (never keeping logits), which ``metrics`` turns into numbers.
"""

from __future__ import annotations

import math

import torch

from .batching import collate_causal, collate_classification, item_examples, pack
from .encode import IGNORE, Example, check_eos, encode_classification, encode_completion, encode_sft
from .loss import classification_loss_sum, inverse_frequency_weights, token_loss_sum

Item = Example | list[Example]  # a packed row is a list of examples


class ClassificationTask:
    """Sequence classification through the model's head; weighted, optionally smoothed cross entropy."""

    kind = "classification"
    primary_metric = "accuracy"

    def __init__(self, labels: list[str], *, label_smoothing: float = 0.0, class_weights: bool = False):
        self.labels = labels
        self.label2id = {name: i for i, name in enumerate(labels)}
        self.label_smoothing = label_smoothing
        self.use_class_weights = class_weights
        self.class_weights: torch.Tensor | None = None

    def encode(self, rows: list[dict], tokenizer, max_length: int, *, train: bool) -> list[Example]:
        examples = encode_classification(rows, tokenizer, self.label2id, max_length)
        if train and self.use_class_weights:
            self.class_weights = inverse_frequency_weights([e.labels for e in examples], len(self.labels))
        return examples

    def items(self, examples: list[Example], max_length: int, packing: bool) -> list[Item]:
        return list(examples)

    def units(self, item: Item) -> float:
        weight = item.weight
        if self.class_weights is not None:
            weight *= float(self.class_weights[item.labels])
        return weight

    def collate(self, items: list[Item], pad_id: int) -> dict[str, torch.Tensor]:
        return collate_classification(items, pad_id)

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


class CausalTask:
    """Next-token prediction on the supervised tokens (SFT: assistant turns; completion: all text).

    With ``select_positions`` the output layer runs only where a target follows (a forward pre-hook
    on the model's output embedding picks those hidden states), so prompt and padding positions
    cost neither the vocabulary projection nor the softmax. Virtual-token methods shift positions
    and use the full logits instead.
    """

    kind = "causal"
    primary_metric = "loss"
    sums_size = 3

    def __init__(self, task: str, *, loss_on: str = "assistant", label_smoothing: float = 0.0,
                 select_positions: bool = True):
        self.task = task
        self.loss_on = loss_on
        self.label_smoothing = label_smoothing
        self.select_positions = select_positions

    def encode(self, rows: list[dict], tokenizer, max_length: int, *, train: bool) -> list[Example]:
        if self.task == "sft":
            examples = encode_sft(rows, tokenizer, max_length, self.loss_on)
            check_eos(examples, tokenizer.eos_token_id)
            return examples
        return encode_completion(rows, tokenizer, max_length)

    def items(self, examples: list[Example], max_length: int, packing: bool) -> list[Item]:
        return pack(examples, max_length) if packing else list(examples)

    def units(self, item: Item) -> float:
        # targets are labels[1:] of each example: its first token is never predicted
        return float(sum(sum(1 for t in e.labels[1:] if t != IGNORE) for e in item_examples(item)))

    def collate(self, items: list[Item], pad_id: int) -> dict[str, torch.Tensor]:
        return collate_causal(items, pad_id)

    def _scored(self, model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, V) logits and (N,) targets for the N supervised positions of the batch."""
        inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "position_ids")}
        targets = batch["labels"][:, 1:]  # (B, T-1)
        keep = targets != IGNORE
        if not self.select_positions:
            logits = model(**inputs, use_cache=False).logits  # (B, P + T, V), P virtual tokens first
            logits = logits[:, logits.shape[1] - batch["labels"].shape[1] :]  # (B, T, V)
            return logits[:, :-1][keep], targets[keep]
        where = torch.zeros_like(batch["labels"], dtype=torch.bool)
        where[:, :-1] = keep  # position t predicts token t+1

        def pick(module, args):
            return (args[0][where],) + tuple(args[1:])  # (B, T, d) -> (N, d)

        handle = model.get_output_embeddings().register_forward_pre_hook(pick)
        try:
            logits = model(**inputs, use_cache=False).logits  # (N, V)
        finally:
            handle.remove()
        return logits, targets[keep]

    def loss_sum(self, model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, float]:
        logits, targets = self._scored(model, batch)
        return token_loss_sum(logits, targets, self.label_smoothing), float(targets.numel())

    def eval_sums(self, model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(3,) float64: NLL sum, supervised tokens, tokens predicted correctly (argmax)."""
        logits, targets = self._scored(model, batch)
        nll = token_loss_sum(logits, targets)
        correct = (logits.argmax(-1) == targets).sum()
        return torch.tensor([float(nll), float(targets.numel()), float(correct)], dtype=torch.float64)

    def metrics(self, sums: torch.Tensor) -> dict[str, float]:
        nll, tokens, correct = (float(x) for x in sums)
        loss = nll / max(tokens, 1.0)
        return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)), "token_accuracy": correct / max(tokens, 1.0),
                "tokens": tokens}


def build_task(task: str, labels: list[str] | None, train_cfg, *, virtual_tokens: bool = False
               ) -> ClassificationTask | CausalTask:
    if task == "classification":
        return ClassificationTask(labels or [], label_smoothing=train_cfg.label_smoothing,
                                  class_weights=train_cfg.class_weights)
    return CausalTask(task, loss_on=train_cfg.loss_on, label_smoothing=train_cfg.label_smoothing,
                      select_positions=not virtual_tokens)

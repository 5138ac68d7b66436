"""Causal language modelling (sft: assistant turns; completion: all text): next-token loss sums and scoring."""

from __future__ import annotations

import math

import torch

from ..models.task_model import body, plain_output_head
from .batching import collate_causal, item_examples, pack
from .encode import IGNORE, Example, check_eos, encode_completion, encode_sft
from .loss import LOGIT_CHUNK, linear_cross_entropy_sum, token_loss_sum
from .registry import TaskSpec, register_task

Item = Example | list[Example]  # a packed row is a list of examples


class CausalTask:
    """Next-token prediction on the supervised tokens (SFT: assistant turns; completion: all text).

    With ``select_positions`` the output layer runs only where a target follows (see ``selected``), and
    training takes the loss from the hidden states in chunks (``linear_cross_entropy_sum``), never
    holding fp32 logits over the vocabulary. Virtual-token methods shift positions and use the full
    logits instead.
    """

    head = "causal"
    sums_size = 3

    def __init__(self, *, chat: bool, loss_on: str = "assistant", label_smoothing: float = 0.0,
                 select_positions: bool = True):
        self.chat = chat
        self.loss_on = loss_on
        self.label_smoothing = label_smoothing
        self.select_positions = select_positions
        self.width_cap: int | None = None  # the longest encoding: batch widths round up to buckets below it

    def encode(self, rows: list[dict], tokenizer, max_length: int, *, train: bool) -> list[Example]:
        if self.chat:
            examples = encode_sft(rows, tokenizer, max_length, self.loss_on)
            check_eos(examples, tokenizer.eos_token_id)
            return examples
        return encode_completion(rows, tokenizer, max_length)

    def items(self, examples: list[Example], max_length: int, packing: bool) -> list[Item]:
        self.width_cap = max(self.width_cap or 0, max_length)
        return pack(examples, max_length) if packing else list(examples)

    def units(self, item: Item) -> float:
        # targets are labels[1:] of each example: its first token is never predicted
        return float(sum(sum(1 for t in e.labels[1:] if t != IGNORE) for e in item_examples(item)))

    def collate(self, items: list[Item], pad_id: int) -> dict[str, torch.Tensor]:
        return collate_causal(items, pad_id, self.width_cap)

    def _inputs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask", "position_ids")}

    def selected(self, model, batch: dict[str, torch.Tensor]):
        """``(hidden (N, d), targets (N,), head)`` at the N supervised positions, or ``None`` where logits must come
        from the whole model (virtual tokens shift positions; some models cap or scale logits after the head).

        The body runs once over the batch and only the positions where a target follows reach the output layer, so
        prompt and padding positions cost neither the vocabulary projection nor the softmax. Nothing is hooked onto
        the model, so the call is the same on every micro-batch (``torch.compile`` sees one graph).
        """
        head = plain_output_head(model) if self.select_positions else None
        if head is None:
            return None
        targets = batch["labels"][:, 1:]  # (B, T-1)
        keep = targets != IGNORE
        where = torch.zeros_like(batch["labels"], dtype=torch.bool)
        where[:, :-1] = keep  # position t predicts token t+1
        hidden = body(model)(**self._inputs(batch), use_cache=False).last_hidden_state  # (B, T, d)
        return hidden[where], targets[keep], head

    def scored(self, model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, V) logits and (N,) targets for the N supervised positions of the batch."""
        picked = self.selected(model, batch)
        if picked is not None:
            hidden, targets, head = picked
            return head(hidden), targets
        targets = batch["labels"][:, 1:]
        logits = model(**self._inputs(batch), use_cache=False).logits  # (B, P + T, V), P virtual tokens first
        logits = logits[:, logits.shape[1] - batch["labels"].shape[1] :]  # (B, T, V)
        keep = targets != IGNORE
        return logits[:, :-1][keep], targets[keep]

    def loss_sum(self, model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, float]:
        picked = self.selected(model, batch)
        if picked is None:
            logits, targets = self.scored(model, batch)
        else:
            hidden, targets, head = picked
            if head.bias is None:
                loss = linear_cross_entropy_sum(hidden, head.weight, targets, self.label_smoothing)
                return loss, float(targets.numel())
            logits = head(hidden)  # a biased output layer: whole logits, from the same single body pass
        return token_loss_sum(logits, targets, self.label_smoothing), float(targets.numel())

    def eval_sums(self, model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(3,) float64: NLL sum, supervised tokens, tokens predicted correctly (argmax).

        Logits and their fp32 softmax are made ``LOGIT_CHUNK`` positions at a time: over the whole batch at once,
        16 rows of a 49k-token vocabulary held a GB more at the peak of a SmolLM2 run's evaluation.
        """
        picked = self.selected(model, batch)
        if picked is not None:
            hidden, targets, head = picked
            parts = ((head(h), t) for h, t in zip(hidden.split(LOGIT_CHUNK), targets.split(LOGIT_CHUNK), strict=True))
        else:
            logits, targets = self.scored(model, batch)
            parts = zip(logits.split(LOGIT_CHUNK), targets.split(LOGIT_CHUNK), strict=True)
        nll, correct = 0.0, 0
        for part, wanted in parts:
            nll += float(token_loss_sum(part, wanted))
            correct += int((part.argmax(-1) == wanted).sum())
        return torch.tensor([nll, float(targets.numel()), float(correct)], dtype=torch.float64)

    def metrics(self, sums: torch.Tensor) -> dict[str, float]:
        nll, tokens, correct = (float(x) for x in sums)
        loss = nll / max(tokens, 1.0)
        return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)), "token_accuracy": correct / max(tokens, 1.0),
                "tokens": tokens}


def _builder(chat: bool):
    def build(labels: list[str] | None, train_cfg, *, virtual_tokens: bool = False) -> CausalTask:
        return CausalTask(chat=chat, loss_on=train_cfg.loss_on, label_smoothing=train_cfg.label_smoothing,
                          select_positions=not virtual_tokens)
    return build


SFT = register_task(TaskSpec(name="sft", head="causal", packable=True, chat=True, eval_sample=40,
                             primary_metric="loss", build=_builder(True)))
COMPLETION = register_task(TaskSpec(name="completion", head="causal", packable=True, chat=False,
                                    eval_sample=40, primary_metric="loss", build=_builder(False)))

"""Causal language modelling (sft: assistant turns; completion: all text): next-token loss sums and scoring."""

from __future__ import annotations

import math

import torch

from .batching import collate_causal, item_examples, pack
from .encode import IGNORE, Example, check_eos, encode_completion, encode_sft
from .loss import token_loss_sum
from .registry import TaskSpec, register_task

Item = Example | list[Example]  # a packed row is a list of examples


EVAL_CHUNK = 256  # supervised positions whose fp32 log-softmax is held at once when scoring


class CausalTask:
    """Next-token prediction on the supervised tokens (SFT: assistant turns; completion: all text).

    With ``select_positions`` the output layer runs only where a target follows (a forward pre-hook
    on the model's output embedding picks those hidden states), so prompt and padding positions
    cost neither the vocabulary projection nor the softmax. Virtual-token methods shift positions
    and use the full logits instead.
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

    def scored(self, model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
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
        logits, targets = self.scored(model, batch)
        return token_loss_sum(logits, targets, self.label_smoothing), float(targets.numel())

    def eval_sums(self, model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(3,) float64: NLL sum, supervised tokens, tokens predicted correctly (argmax).

        The fp32 softmax runs over 256 positions at a time: over the whole batch at once, 16 rows of a 49k-token
        vocabulary held a GB more at the peak of a SmolLM2 run's evaluation.
        """
        logits, targets = self.scored(model, batch)
        nll, correct = 0.0, 0
        for part, wanted in zip(logits.split(EVAL_CHUNK), targets.split(EVAL_CHUNK), strict=True):
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

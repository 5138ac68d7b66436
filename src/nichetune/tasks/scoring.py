"""No-grad scoring shared by training's validation and evaluation: reduce batch by batch, keep no logits."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext

import torch

from .batching import item_tokens, token_slices


def autocast_for(dtype: torch.dtype, device: str):
    """bf16/fp16 autocast on the device when the run computes in reduced precision; nothing in fp32."""
    if dtype == torch.float32:
        return nullcontext()
    return torch.autocast(device_type=device.split(":")[0], dtype=dtype)


def score(model, task, items: list, *, batch_size: int, pad_id: int, device: str = "cpu",
          dtype: torch.dtype = torch.float32,
          reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
          max_tokens: int | None = None) -> dict[str, float]:
    """``task.metrics`` of ``items``: ``task.eval_sums`` per batch, summed, then ``reduce``d (e.g. across processes).

    Longest items go first so a batch holds similar lengths; a batch over ``max_tokens`` padded tokens runs in slices.
    The model's train/eval mode is restored.
    """
    was_training = model.training
    model.eval()
    ordered = sorted(items, key=lambda it: -item_tokens(it))
    sums = torch.zeros(task.sums_size, dtype=torch.float64)
    with torch.no_grad(), autocast_for(dtype, device):
        for start in range(0, len(ordered), batch_size):
            for part in token_slices(ordered[start : start + batch_size], max_tokens):
                batch = task.collate(part, pad_id)
                sums += task.eval_sums(model, {k: v.to(device) for k, v in batch.items()}).cpu()
    if reduce is not None:
        sums = reduce(sums)
    model.train(was_training)
    return task.metrics(sums)


def score_rows(model, task, tokenizer, rows: list[dict], max_length: int, *, batch_size: int = 8,
               device: str = "cpu", dtype: torch.dtype = torch.float32) -> dict[str, float]:
    """Encode ``rows`` as held-out data (no packing) and ``score`` them."""
    items = task.items(task.encode(rows, tokenizer, max_length, train=False), max_length, False)
    return score(model, task, items, batch_size=batch_size, pad_id=tokenizer.pad_token_id, device=device, dtype=dtype)


def classifier_logits(model, tokenizer, texts: list[str], *, max_length: int, batch_size: int = 32,
                      max_padding: float | None = None, lexical=None):
    """(N, C) float64 logits of a sequence classifier on ``texts``, batched by length, no gradients.

    ``lexical`` (a ``tasks.lexical.LexicalStack``, a run's ``train.lexical: stack``) turns the encoder's logits
    into the stack's.

    ``max_padding`` also cuts batches where padding would pass that share of the real tokens (see
    ``length_chunks``); character counts stand in for token counts. A tokenizer recording ``windows`` (see
    ``truncation``) has every window of a long text read and the text's logits are their mean.
    """
    import numpy as np

    from ..length_chunks import length_chunks
    from ..truncation import encode_batch, encode_windows, mean_by_owner, truncation_of

    device = next(model.parameters()).device
    windows = truncation_of(tokenizer) == "windows"  # every window of every text read, its logits averaged per text
    ids, owner = encode_windows(tokenizer, texts, max_length) if windows else (texts, None)
    out = np.zeros((len(ids), model.config.num_labels), dtype=np.float64)
    with torch.inference_mode():
        for idx in length_chunks([len(i) for i in ids], batch_size, max_padding):
            part = [ids[i] for i in idx]
            batch = tokenizer.pad({"input_ids": part}, return_tensors="pt") if windows else \
                encode_batch(tokenizer, part, max_length)
            out[idx] = model(**batch.to(device)).logits.float().cpu().numpy()
    out = mean_by_owner(out, owner, len(texts)) if windows else out
    return out if lexical is None else lexical.apply(texts, out)

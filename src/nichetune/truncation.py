"""How a classifier reads a text longer than its window: the head (the first tokens), head + tail, or windows.

Head + tail keeps the first quarter and the last three quarters of the window (Sun et al., 2019, "How to Fine-Tune
BERT for Text Classification?": the first 128 and last 382 of 512 tokens beat either end alone on long reviews and
news). Windows read the whole text: overlapping windows (each starting half a window after the one before, the last
ending at the text's end), their logits averaged (chunk and mean-pool); training reads head + tail, one sequence a
row, so a long text costs one pass there and its windows only when predicting. The choice travels with the tokenizer
saved beside the weights (``tokenizer_config.json``), so training, ``eval``, ``classify``, the server and every
export read a text the same way. Torch-free: the ONNX runner uses it.
"""

from __future__ import annotations

from typing import Literal

Truncation = Literal["head", "head_tail", "windows"]
KEY = "nichetune_truncation"  # in the tokenizer's init kwargs (saved in tokenizer_config.json)
HEAD_SHARE = 0.25
WINDOW_STEP = 0.5  # a window starts this share of a window after the one before
_PROBE = "hello world"


def truncation_of(tokenizer) -> str:
    return (getattr(tokenizer, "init_kwargs", None) or {}).get(KEY, "head")


def set_truncation(tokenizer, truncation: str) -> None:
    """Record ``truncation`` in ``tokenizer`` (saved with it by ``save_pretrained``)."""
    if truncation == "head":
        tokenizer.init_kwargs.pop(KEY, None)
    else:
        tokenizer.init_kwargs[KEY] = truncation


def special_ids(tokenizer) -> tuple[list[int], list[int]]:
    """The ids a tokenizer puts before and after a single text (``[CLS]`` and ``[SEP]`` for BERT)."""
    full = list(tokenizer(_PROBE)["input_ids"])
    body = list(tokenizer(_PROBE, add_special_tokens=False)["input_ids"])
    for start in range(len(full) - len(body) + 1):
        if full[start : start + len(body)] == body:
            return full[:start], full[start + len(body):]
    return [], []


def head_tail(body: list[int], budget: int) -> list[int]:
    """``body`` when it fits ``budget``, else its first ``HEAD_SHARE`` and its last tokens, ``budget`` in all."""
    if len(body) <= budget:
        return list(body)
    head = round(budget * HEAD_SHARE)
    return list(body[:head]) + list(body[len(body) - (budget - head):])


def window_starts(n: int, budget: int) -> list[int]:
    """Where the windows of an ``n``-token body start: ``[0]`` when it fits ``budget``, else every ``WINDOW_STEP``
    of a window, the last one ending at the body's end, so every token is read."""
    if n <= budget:
        return [0]
    return [*range(0, n - budget, max(1, round(budget * WINDOW_STEP))), n - budget]


def windows(body: list[int], budget: int) -> list[list[int]]:
    """The windows of ``body`` (see ``window_starts``), ``budget`` tokens each at most."""
    return [list(body[s : s + budget]) for s in window_starts(len(body), budget)]


def window_ids(bodies: list[list[int]], max_length: int, prefix: list[int],
               suffix: list[int]) -> tuple[list[list[int]], list[int]]:
    """Every window of every body between the special tokens, and the index of the body each belongs to."""
    budget = max(1, max_length - len(prefix) - len(suffix))
    ids, owner = [], []
    for i, body in enumerate(bodies):
        for window in windows(body, budget):
            ids.append(prefix + window + suffix)
            owner.append(i)
    return ids, owner


def mean_by_owner(values, owner: list[int], n: int):
    """(n, C) float64: the mean of ``values``' rows (windows) for each of ``n`` owners (texts)."""
    import numpy as np

    owner_ = np.asarray(owner, dtype=np.int64)
    sums = np.zeros((n, values.shape[1]), dtype=np.float64)
    np.add.at(sums, owner_, np.asarray(values, dtype=np.float64))
    return sums / np.maximum(np.bincount(owner_, minlength=n), 1)[:, None]


def clip(bodies: list[list[int]], max_length: int, prefix: list[int], suffix: list[int]) -> list[list[int]]:
    budget = max(1, max_length - len(prefix) - len(suffix))
    return [prefix + head_tail(b, budget) + suffix for b in bodies]


def encode_ids(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids of ``texts`` as the classifier trains on them (special tokens included), at most ``max_length``:
    one sequence a text (head + tail for ``windows``, which only prediction reads in windows)."""
    if truncation_of(tokenizer) == "head":
        return [list(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
    prefix, suffix = special_ids(tokenizer)
    bodies = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
    return clip(bodies, max_length, prefix, suffix)


def encode_windows(tokenizer, texts: list[str], max_length: int) -> tuple[list[list[int]], list[int]]:
    """Token ids of every window of ``texts`` (see ``windows``) and the index of the text each belongs to."""
    prefix, suffix = special_ids(tokenizer)
    bodies = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
    return window_ids(bodies, max_length, prefix, suffix)


def encode_batch(tokenizer, texts: list[str], max_length: int):
    """A padded batch of tensors (input ids, attention mask) for a torch classifier."""
    if truncation_of(tokenizer) == "head":
        return tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return tokenizer.pad({"input_ids": encode_ids(tokenizer, texts, max_length)}, return_tensors="pt")


def seen_share(tokenizer, texts: list[str], max_length: int) -> dict:
    """How much of ``texts`` a classifier with a ``max_length`` window reads: the share of all tokens, the share of
    texts longer than the window, and the windows read per text (1 unless ``windows``)."""
    prefix, suffix = special_ids(tokenizer)
    budget = max(1, max_length - len(prefix) - len(suffix))
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]]
    total, whole = sum(lengths), truncation_of(tokenizer) == "windows"
    read = sum(n if whole else min(n, budget) for n in lengths)
    passes = sum(len(window_starts(n, budget)) for n in lengths) if whole else len(lengths)
    return {"truncation": truncation_of(tokenizer), "max_length": max_length,
            "token_share": read / total if total else 1.0,
            "texts_cut": sum(n > budget for n in lengths) / len(lengths) if lengths else 0.0,
            "windows_per_text": passes / len(lengths) if lengths else 1.0}


def how_read(inputs: dict) -> str:
    """How a classifier read its texts longer than the window, for a sentence (``inputs`` from ``seen_share``)."""
    n = inputs["max_length"]
    if inputs["truncation"] == "windows":
        return (f"whole, in overlapping windows of {n} tokens ({inputs.get('windows_per_text', 1.0):.1f} a text on "
                "average) whose logits are averaged")
    if inputs["truncation"] == "head_tail":
        return f"the first quarter and the last three quarters of {n} tokens"
    return f"the first {n} tokens"

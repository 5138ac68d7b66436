"""How a classifier reads a text longer than its window: the head (the first tokens), or head + tail.

Head + tail keeps the first quarter and the last three quarters of the window (Sun et al., 2019, "How to Fine-Tune
BERT for Text Classification?": the first 128 and last 382 of 512 tokens beat either end alone on long reviews and
news). The choice travels with the tokenizer saved beside the weights (``tokenizer_config.json``), so training,
``eval``, ``classify``, the server and every export read a text the same way. Torch-free: the ONNX runner uses it.
"""

from __future__ import annotations

from typing import Literal

Truncation = Literal["head", "head_tail"]
KEY = "nichetune_truncation"  # in the tokenizer's init kwargs (saved in tokenizer_config.json)
HEAD_SHARE = 0.25
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


def clip(bodies: list[list[int]], max_length: int, prefix: list[int], suffix: list[int]) -> list[list[int]]:
    budget = max(1, max_length - len(prefix) - len(suffix))
    return [prefix + head_tail(b, budget) + suffix for b in bodies]


def encode_ids(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    """Token ids of ``texts`` as the classifier reads them (special tokens included), at most ``max_length``."""
    if truncation_of(tokenizer) == "head":
        return [list(ids) for ids in tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]]
    prefix, suffix = special_ids(tokenizer)
    bodies = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
    return clip(bodies, max_length, prefix, suffix)


def encode_batch(tokenizer, texts: list[str], max_length: int):
    """A padded batch of tensors (input ids, attention mask) for a torch classifier."""
    if truncation_of(tokenizer) == "head":
        return tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    return tokenizer.pad({"input_ids": encode_ids(tokenizer, texts, max_length)}, return_tensors="pt")


def seen_share(tokenizer, texts: list[str], max_length: int) -> dict:
    """How much of ``texts`` a classifier with a ``max_length`` window reads: the share of all tokens, and the share
    of texts cut."""
    prefix, suffix = special_ids(tokenizer)
    budget = max(1, max_length - len(prefix) - len(suffix))
    lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]]
    total = sum(lengths)
    return {"truncation": truncation_of(tokenizer), "max_length": max_length,
            "token_share": sum(min(n, budget) for n in lengths) / total if total else 1.0,
            "texts_cut": sum(n > budget for n in lengths) / len(lengths) if lengths else 0.0}

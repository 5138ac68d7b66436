"""Counts, label balance with small-data advice, and token lengths."""

from __future__ import annotations

from collections import Counter

import numpy as np

from ..schema import row_schema

FEW_SHOT_BELOW = 8
ADAPTERS_BELOW = 50


def overview_section(rows: list[dict], task: str) -> dict:
    out: dict = {"rows": len(rows), "task": task, "warnings": []}
    if not row_schema(task).labelled:
        return out
    counts = Counter(r["label"] for r in rows)
    out["labels"] = dict(counts.most_common())
    out["classes"] = len(counts)
    if counts:
        smallest = min(counts.values())
        out["imbalance_ratio"] = round(max(counts.values()) / smallest, 2)
        tiny = sorted(k for k, v in counts.items() if v < FEW_SHOT_BELOW)
        small = sorted(k for k, v in counts.items() if FEW_SHOT_BELOW <= v < ADAPTERS_BELOW)
        if tiny:
            out["warnings"].append(f"few-shot regime: fewer than {FEW_SHOT_BELOW} examples for {tiny}; "
                                   "prefer few-shot prompting or prompt tuning, or collect more data")
        if small:
            out["warnings"].append(f"small classes (< {ADAPTERS_BELOW} examples): {small}; prefer adapters/LoRA "
                                   "over full fine-tuning, with early stopping")
        if out["imbalance_ratio"] >= 5:
            out["warnings"].append(f"imbalance ratio {out['imbalance_ratio']}: use class weights and report "
                                   "macro-F1, not only accuracy")
    return out


def length_section(texts: list[str], tokenizer=None, max_length: int = 512, batch: int = 1000) -> dict:
    """Token-length statistics (tokenizer pieces, or whitespace words without a tokenizer)."""
    lengths = np.zeros(len(texts), dtype=np.int64)
    for start in range(0, len(texts), batch):
        chunk = texts[start : start + batch]
        if tokenizer is not None:
            ids = tokenizer(chunk, add_special_tokens=True, truncation=False)["input_ids"]
            lengths[start : start + len(chunk)] = [len(x) for x in ids]
        else:
            lengths[start : start + len(chunk)] = [len(t.split()) for t in chunk]
    if not len(lengths):
        return {"unit": "tokens" if tokenizer else "words", "count": 0}
    q = np.percentile(lengths, [50, 90, 99])
    return {"unit": "tokens" if tokenizer is not None else "words", "count": int(len(lengths)),
            "min": int(lengths.min()), "mean": round(float(lengths.mean()), 1), "p50": float(q[0]),
            "p90": float(q[1]), "p99": float(q[2]), "max": int(lengths.max()), "max_length": max_length,
            "truncated_share": round(float((lengths > max_length).mean()), 4),
            "histogram": np.histogram(lengths, bins=20)[0].tolist(),
            "histogram_edges": np.histogram(lengths, bins=20)[1].round(1).tolist()}

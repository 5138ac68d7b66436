"""Small labelled datasets for the training and evaluation tests, in the tiny tokenizer's vocabulary."""

from __future__ import annotations

import json
import random
from pathlib import Path

POS = "the drug helped my pain with no side effects".split()
NEG = "terrible nausea and headaches so i stopped".split()
ANSWERS = {"compiler": "the compiler translates source code into machine code",
           "kernel": "a kernel schedules processes and manages memory"}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def review_rows(n: int, *, seed: int, own: int, noise: int, choices: dict[str, list[str]] | None = None) -> list[dict]:
    """Alternating negative/positive reviews: ``own`` words of the label's list plus ``noise`` words of
    both (more noise, a less perfect classifier); ``choices`` adds a field drawn from a list per row."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "positive" if i % 2 else "negative"
        words = rng.sample(POS if label == "positive" else NEG, own) + rng.sample(POS + NEG, noise)
        row = {"id": f"r{i}", "text": " ".join(words), "label": label}
        for field, values in (choices or {}).items():
            row[field] = rng.choice(values)
        rows.append(row)
    return rows


def chat_rows(n: int) -> list[dict]:
    """Alternating 'what does kernel / compiler mean' conversations with fixed answers (and the term)."""
    rows = []
    for i in range(n):
        term = "compiler" if i % 2 else "kernel"
        rows.append({"id": f"c{i}", "term": term,
                     "messages": [{"role": "user", "content": f"what does {term} mean in computing"},
                                  {"role": "assistant", "content": ANSWERS[term]}]})
    return rows


def kill_at(step: int):
    """An ``on_step`` callback that SIGKILLs its own process after optimizer step ``step`` (a crash
    at the worst moment: no cleanup, no finally blocks)."""
    import os
    import signal

    def on_step(current: int) -> None:
        if current == step:
            os.kill(os.getpid(), signal.SIGKILL)

    return on_step

"""Learning-rate schedules: linear warmup, then cosine, linear or constant."""

from __future__ import annotations

import math


def warmup_steps(warmup: float, total_steps: int) -> int:
    """``warmup`` below 1 is a ratio of the total steps, otherwise a number of steps."""
    return int(round(warmup * total_steps)) if warmup < 1 else int(warmup)


def lr_factor(step: int, total_steps: int, warmup: int, kind: str) -> float:
    """The multiplier of the peak LR at optimizer ``step`` (0-based)."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if kind == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    if kind == "linear":
        return 1.0 - progress
    return 0.5 * (1.0 + math.cos(math.pi * progress))

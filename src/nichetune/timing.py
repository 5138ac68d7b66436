"""Single-request latency as every measurement here takes it: warm up, then time each request alone."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np


def single_requests(call: Callable[[list], object], items: Sequence, requests: int, *, warmup: int = 1) -> list[float]:
    """Seconds per call of ``call([item])`` for ``requests`` items (cycling through ``items``), after
    ``warmup`` untimed calls."""
    for item in list(items)[:warmup]:
        call([item])
    seconds = []
    for item in (list(items) * (requests // max(1, len(items)) + 1))[:requests]:
        start = time.perf_counter()
        call([item])
        seconds.append(time.perf_counter() - start)
    return seconds


def percentiles(seconds: Sequence[float]) -> dict:
    """p50 / p95 / p99 / mean in milliseconds, and how many requests they summarise."""
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean()), "requests": len(ms)}

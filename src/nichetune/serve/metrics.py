"""Counters, gauges and histograms in the Prometheus text exposition format (version 0.0.4), written by hand:
the server needs a dozen series, not a client library."""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict
from collections.abc import Callable

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    escaped = (v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") for _, v in labels)
    return "{" + ",".join(f'{k}="{v}"' for (k, _), v in zip(labels, escaped, strict=True)) + "}"


def _number(value: float) -> str:
    return repr(float(value)) if value != int(value) else str(int(value))


class Metrics:
    """Thread-safe series; ``gauge`` registers a function read at scrape time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._help: dict[str, tuple[str, str]] = {}
        self._counters: dict[str, dict[tuple, float]] = defaultdict(dict)
        self._hist: dict[str, dict[tuple, list]] = defaultdict(dict)
        self._buckets: dict[str, tuple[float, ...]] = {}
        self._gauges: dict[str, Callable[[], float]] = {}

    def counter(self, name: str, help_: str) -> None:
        self._help[name] = ("counter", help_)

    def histogram(self, name: str, help_: str, buckets: tuple[float, ...]) -> None:
        self._help[name] = ("histogram", help_)
        self._buckets[name] = buckets

    def gauge(self, name: str, help_: str, read: Callable[[], float]) -> None:
        self._help[name] = ("gauge", help_)
        self._gauges[name] = read

    def inc(self, name: str, value: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._counters[name][key] = self._counters[name].get(key, 0.0) + value

    def observe(self, name: str, value: float, **labels: str) -> None:
        key, buckets = tuple(sorted(labels.items())), self._buckets[name]
        with self._lock:
            counts = self._hist[name].setdefault(key, [[0] * len(buckets), 0, 0.0])
            i = bisect.bisect_left(buckets, value)
            if i < len(buckets):
                counts[0][i] += 1
            counts[1] += 1
            counts[2] += value

    def value(self, name: str, **labels: str) -> float:
        with self._lock:
            return self._counters[name].get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for name, (kind, help_) in sorted(self._help.items()):
                lines += [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
                if kind == "counter":
                    lines += [f"{name}{_labels(k)} {_number(v)}" for k, v in sorted(self._counters[name].items())]
                elif kind == "gauge":
                    lines.append(f"{name} {_number(self._gauges[name]())}")
                else:
                    for key, (counts, total, summed) in sorted(self._hist[name].items()):
                        running = 0
                        for bound, c in zip(self._buckets[name], counts, strict=True):
                            running += c
                            lines.append(f"{name}_bucket{_labels(key + (('le', _number(bound)),))} {running}")
                        lines.append(f"{name}_bucket{_labels(key + (('le', '+Inf'),))} {total}")
                        lines += [f"{name}_sum{_labels(key)} {_number(summed)}", f"{name}_count{_labels(key)} {total}"]
        return "\n".join(lines) + "\n"

"""Plain terminal output: aligned tables, JSON, timed status lines."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager


def print_json(data) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def print_table(rows: Sequence[dict], columns: Sequence[str], file=None) -> None:
    file = file or sys.stdout  # looked up per call: a redirected stdout (capture, redirect_stdout) is honoured
    if not rows:
        print("(none)", file=file)
        return
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip(), file=file)
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip(), file=file)


@contextmanager
def status(message: str, file=None) -> Iterator[None]:
    """Print ``message``, then ``done`` or ``FAILED`` with the elapsed time (on stderr unless ``file``)."""
    file = file or sys.stderr
    start = time.perf_counter()
    print(f"... {message}", file=file, flush=True)
    try:
        yield
    except BaseException:
        print(f"FAILED {message} after {time.perf_counter() - start:.1f}s", file=file, flush=True)
        raise
    print(f"done {message} in {time.perf_counter() - start:.1f}s", file=file, flush=True)


def add_safety_flags(parser) -> None:
    parser.add_argument("--allow-pickle", action="store_true",
                        help="accept model folders with only pickle weights (can run code hidden in the file)")
    parser.add_argument("--trust-remote-code", action="store_true",
                        help="run custom model code shipped in the model folder (off by default)")

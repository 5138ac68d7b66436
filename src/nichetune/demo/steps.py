"""Named demo steps: a status line with elapsed time, the equivalent CLI command, and carry-on failures.

A step that raises is recorded with what failed and how to fix it (a ``NichetuneError``'s hint, or
the command to re-run the step alone); steps that need its result are skipped with the reason, and
the rest of the demo goes on.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import NichetuneError
from ..hardware import peak_rss_mb, release_memory, rss_mb

SKIPPED = object()  # what a step returns when it did not run


@dataclass
class Steps:
    total: int
    out: Any = sys.stderr
    started: float = field(default_factory=time.perf_counter)
    done: int = 0
    failures: list[dict] = field(default_factory=list)
    commands: list[dict] = field(default_factory=list)

    def elapsed(self) -> str:
        return f"[{time.perf_counter() - self.started:6.1f}s]"

    def say(self, text: str) -> None:
        print(f"{self.elapsed()} {text}", file=self.out, flush=True)

    def run(self, name: str, fn: Callable[[], Any], *, command: str | None = None, needs: tuple = ()) -> Any:
        """Run ``fn`` as step ``name``; ``needs`` are earlier results, and a ``SKIPPED`` one skips this step."""
        self.done += 1
        head = f"step {self.done}/{self.total}: {name}"
        if any(n is SKIPPED for n in needs):
            self.say(f"{head}: skipped (an earlier step it needs failed)")
            return SKIPPED
        self.say(head + (f"\n{' ' * 10}$ {command}" if command else ""))
        if command:
            self.commands.append({"step": name, "command": command})
        start = time.perf_counter()
        try:
            result = fn()
        except KeyboardInterrupt:
            raise
        except Exception as exc:  # the demo reports what failed and carries on with what it can
            fix = exc.hint if isinstance(exc, NichetuneError) and exc.hint else (
                f"run the step alone to see the full error: {command}" if command else "see the traceback above")
            message = exc.message if isinstance(exc, NichetuneError) else f"{type(exc).__name__}: {exc}"
            if not isinstance(exc, NichetuneError):
                traceback.print_exc(file=self.out)
            self.failures.append({"step": name, "error": message, "fix": fix})
            self.say(f"FAILED {name} after {time.perf_counter() - start:.1f}s: {message}\n"
                     f"{' ' * 10}how to fix: {fix}")
            return SKIPPED
        release_memory()
        self.say(f"done {name} in {time.perf_counter() - start:.1f}s (resident {rss_mb() / 1024:.1f} GB, "
                 f"peak so far {peak_rss_mb() / 1024:.1f} GB)")
        return result

"""Run a command and read its own peak resident memory, not its parent's.

Linux carries a process's high-water resident set across fork and exec into the child's ``ru_maxrss``: a command
started by a benchmark that has already loaded models reads the benchmark's peak, not its own (TF-IDF fits read
1,053 MB this way against 415 MB when started from a fresh process). So the command is started by a small launcher
(a fresh Python that has loaded nothing), whose own child's ``ru_maxrss`` is the command's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    f.write(str(usage.ru_maxrss))
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def run_measured(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> dict:
    """Run ``cmd`` with its output in ``log`` (and ``env`` added to this process's environment): wall seconds, its
    own peak RSS in MB, and its exit code."""
    with tempfile.TemporaryDirectory() as tmp:
        peak_file = Path(tmp) / "peak"
        start = time.perf_counter()
        with open(log, "w") as out:
            code = subprocess.call([sys.executable, "-c", _LAUNCHER, str(peak_file), *cmd], stdout=out,
                                   stderr=subprocess.STDOUT, env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"})
        wall = time.perf_counter() - start
        peak_kb = int(peak_file.read_text()) if peak_file.is_file() else 0
    return {"wall_s": round(wall, 1), "peak_mb": round(peak_kb / 1024), "code": code}

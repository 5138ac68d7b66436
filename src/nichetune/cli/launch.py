"""Start the command under a C allocator that does not fragment (tcmalloc, else jemalloc) where one is installed.

glibc's malloc keeps freed activation buffers in its heap, where the next batch's differently shaped tensors do not
fit them. Twelve steps of the demo's SmolLM2 LoRA run on FOLDOC (fp32, 2 cores) peaked at 2,814 MB resident under
glibc (mmap threshold fixed at 16 MB) at 104 supervised tokens/s; 1,867 MB at 107 tokens/s under tcmalloc, 1,897 MB
at 97 under jemalloc, with the same losses to the last digit (benchmarks/README.md). An allocator can only be chosen
before the process starts, so the command re-executes itself once with ``LD_PRELOAD`` set, as PyTorch's CPU
launcher (``torch.backends.xeon.run_cpu``) does. ``NICHETUNE_ALLOCATOR=system`` keeps glibc's; a path picks a
library.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ENV = "NICHETUNE_ALLOCATOR"  # auto (default) | system | /path/to/lib.so
TRIED = "NICHETUNE_ALLOCATOR_TRIED"  # set on the re-executed process: never loop
LIBRARIES = ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4", "libjemalloc.so.2")  # in order of preference
FOLDERS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib")


def find_allocator(environ: dict[str, str], folders: tuple[str, ...] = FOLDERS) -> str | None:
    """The library to preload, or ``None`` (asked for the system's, none installed, or not Linux)."""
    choice = environ.get(ENV, "auto").strip() or "auto"
    if choice == "system" or not sys.platform.startswith("linux"):
        return None
    if choice != "auto":
        return choice if Path(choice).is_file() else None
    for name in LIBRARIES:
        for folder in (*folders, os.path.join(sys.prefix, "lib")):
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                return path
    return None


def relaunch_env(environ: dict[str, str], folders: tuple[str, ...] = FOLDERS) -> dict[str, str] | None:
    """The environment to re-execute under, or ``None`` to run as we are.

    ``None`` when this process was already re-executed (``TRIED``), when ``LD_PRELOAD`` already names an allocator
    (the user chose one), or when there is nothing to preload.
    """
    if environ.get(TRIED) or any(name.split(".so")[0] in environ.get("LD_PRELOAD", "") for name in LIBRARIES):
        return None
    library = find_allocator(environ, folders)
    if library is None:
        return None
    preload = " ".join(p for p in (library, environ.get("LD_PRELOAD", "")) if p)
    # tcmalloc reports every block over 1 GB on stderr (a long batch's logits can be one): not the user's concern
    return {"TCMALLOC_LARGE_ALLOC_REPORT_THRESHOLD": str(2**40), **environ, "LD_PRELOAD": preload, TRIED: library}


def relaunch_under_allocator() -> None:
    """Replace this process with ``python -m nichetune ARGS`` under the allocator; returns only where none applies.

    Children inherit ``LD_PRELOAD``, so distributed workers and servers the command starts use the same allocator.
    """
    env = relaunch_env(dict(os.environ))
    if env is None:
        return
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, [sys.executable, "-m", "nichetune", *sys.argv[1:]], env)
    except OSError:  # an unusual interpreter layout: run on under glibc's allocator rather than fail
        return

"""What produced an artifact: nichetune's version and commit, Python, and the versions of the packages used."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

from . import __version__

CORE = ("torch", "transformers", "peft", "accelerate", "safetensors", "tokenizers")


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def package_versions(packages: tuple[str, ...] = CORE) -> dict[str, str]:
    """nichetune, Python and each installed package of ``packages`` (missing ones are left out)."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"nichetune": __version__, "python": platform.python_version()}
    for pkg in packages:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out

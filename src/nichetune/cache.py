"""Where nichetune keeps prepared models and other derived files."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """Return the user cache directory (``$NICHETUNE_CACHE``, else ``$XDG_CACHE_HOME/nichetune``)."""
    explicit = os.environ.get("NICHETUNE_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "nichetune"


def models_cache_dir() -> Path:
    return cache_dir() / "models"


def debian_root() -> Path:
    """Folder into which ``scripts/fetch_debian_assets.sh`` unpacks Debian data packages."""
    return cache_dir() / "debian"

"""Offline by default: nothing reaches a model hub unless the user opts in.

``HF_HUB_OFFLINE=1`` is set when nichetune is imported, before transformers or
huggingface_hub read it, unless the user already chose a value or set
``NICHETUNE_ONLINE=1`` (the CLI's ``--online`` flag does the same).
"""

from __future__ import annotations

import os

_TRUE = {"1", "true", "yes", "on"}


def apply_default() -> None:
    if os.environ.get("NICHETUNE_ONLINE", "").lower() in _TRUE:
        os.environ["HF_HUB_OFFLINE"] = "0"
    else:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")


def go_online() -> None:
    """Allow hub downloads for this process (must run before transformers is imported)."""
    os.environ["NICHETUNE_ONLINE"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "0"


def is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "1").lower() in _TRUE

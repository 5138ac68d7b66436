"""Offline by default: nothing reaches a model hub unless the user opts in.

The library decides by ``is_offline()`` (offline unless ``NICHETUNE_ONLINE=1``, ``go_online()``,
or an explicit ``HF_HUB_OFFLINE=0``); importing nichetune changes no environment variable. The
``nichetune`` command also sets ``HF_HUB_OFFLINE=1`` for its own process (``apply_default``), so
transformers and huggingface_hub stay offline under it too; ``--online`` lifts that.
"""

from __future__ import annotations

import os

_TRUE = {"1", "true", "yes", "on"}


def _online_opt_in() -> bool:
    return os.environ.get("NICHETUNE_ONLINE", "").lower() in _TRUE


def apply_default() -> None:
    """For the CLI process: pin the hub libraries offline unless the user opted in."""
    if _online_opt_in():
        os.environ["HF_HUB_OFFLINE"] = "0"
    else:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")


def go_online() -> None:
    """Allow hub downloads for this process (must run before transformers is imported)."""
    os.environ["NICHETUNE_ONLINE"] = "1"
    os.environ["HF_HUB_OFFLINE"] = "0"


def is_offline() -> bool:
    """Whether nichetune may download: no, unless the user opted in (an unset variable means offline)."""
    if _online_opt_in():
        return False
    return os.environ.get("HF_HUB_OFFLINE", "1").lower() in _TRUE

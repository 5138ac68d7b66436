"""User-written regular expressions, checked where they are read (recipes, CLI options)."""

from __future__ import annotations

import re


def check_regex(pattern: str) -> str:
    """Return ``pattern`` if it compiles.

    Raises:
        ValueError: naming the pattern and what is wrong with it (pydantic turns it into a field error).
    """
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"{pattern!r} is not a valid regular expression: {exc}") from None
    return pattern

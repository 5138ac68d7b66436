"""The one rule every registry here keeps (methods, tasks, evaluators): a name is registered once."""

from __future__ import annotations

from typing import TypeVar

T = TypeVar("T")


def add_unique(table: dict[str, T], key: str, item: T, what: str) -> T:
    """``table[key] = item``, refusing a second registration under the same name; returns ``item``."""
    if key in table:
        raise ValueError(f"{what} {key!r} is registered twice")
    table[key] = item
    return item

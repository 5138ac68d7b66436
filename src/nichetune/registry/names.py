"""Names, versions and aliases as the registry accepts them: never a path, never an escape from its root.

A name or alias is 1-64 characters of lowercase letters, digits, ``.``, ``_`` and ``-``, starting with a
letter or digit and never ``..``; nothing is decoded (``%2e%2e`` is refused as it stands). A version is a
positive integer. A reference is ``NAME``, ``NAME@VERSION`` or ``NAME@ALIAS``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import NichetuneError

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


def check_name(value: str, what: str = "name") -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value) or ".." in value:
        raise NichetuneError(f"registry {what} {value!r} is not allowed",
                             hint="use 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter or "
                                  "digit (no '/', '..' or '%')")
    return value


@dataclass(frozen=True)
class Ref:
    """``NAME`` (latest version), ``NAME@VERSION`` or ``NAME@ALIAS``."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        tail = self.version if self.version is not None else self.alias
        return self.name if tail is None else f"{self.name}@{tail}"


def parse_ref(text: str) -> Ref:
    name, _, tail = str(text).partition("@")
    check_name(name)
    if not tail:
        return Ref(name)
    if tail.isdigit():
        version = int(tail)
        if version < 1:
            raise NichetuneError(f"version {tail!r} in {text!r} is not allowed", hint="versions start at 1")
        return Ref(name, version=version)
    return Ref(name, alias=check_name(tail, "alias"))


def inside(root: Path, *parts: str) -> Path:
    """``root / parts`` after checking, with symlinks resolved, that it stays inside ``root``."""
    base = root.resolve()
    path = base.joinpath(*parts)
    resolved = path.resolve()
    if resolved != base and base not in resolved.parents:
        raise NichetuneError(f"{path} leads outside the registry root {base}",
                             hint="a registry path may not be a symlink out of the registry")
    return path

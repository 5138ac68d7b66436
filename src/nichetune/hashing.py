"""sha256 of files and folder manifests: one implementation for models, data and runs."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from .atomic import atomic_write_text

MANIFEST_NAME = "nichetune-manifest.json"
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _files(folder: Path) -> Iterable[Path]:
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != MANIFEST_NAME:
            yield path


def folder_digest(folder: Path) -> dict[str, str]:
    """Map each file's path relative to ``folder`` to its sha256 (the manifest is excluded)."""
    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in _files(folder)}


def write_manifest(folder: Path, extra: dict | None = None) -> dict:
    """Write ``nichetune-manifest.json`` listing the sha256 of every file in ``folder``."""
    sizes = {p.relative_to(folder).as_posix(): p.stat().st_size for p in _files(folder)}
    manifest = {"files": folder_digest(folder), "sizes": sizes, **(extra or {})}
    atomic_write_text(folder / MANIFEST_NAME, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read_manifest(folder: Path) -> dict | None:
    path = folder / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def verify_manifest(folder: Path, *, deep: bool = True) -> list[str]:
    """Return the problems found (missing, extra or changed files); empty means verified.

    ``deep=False`` compares file sizes only (fast, for every reuse); ``deep=True`` compares sha256.
    """
    manifest = read_manifest(folder)
    key = "files" if deep else "sizes"
    if manifest is None or not isinstance(manifest.get(key), dict):
        return [f"{folder / MANIFEST_NAME} is missing or unreadable"]
    expected: dict = manifest[key]
    if deep:
        actual: dict = folder_digest(folder)
    else:
        actual = {p.relative_to(folder).as_posix(): p.stat().st_size for p in _files(folder)}
    problems = [f"missing file {name}" for name in sorted(set(expected) - set(actual))]
    problems += [f"unexpected file {name}" for name in sorted(set(actual) - set(expected))]
    problems += [
        f"{'sha256' if deep else 'size'} mismatch for {name}"
        for name in sorted(set(expected) & set(actual))
        if expected[name] != actual[name]
    ]
    return problems

"""Prepare embedded models once into the user cache: locked, atomic, manifest-verified."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

from ..atomic import atomic_dir
from ..cache import models_cache_dir
from ..hashing import sha256_file, verify_manifest, write_manifest
from .embedded import get_embedded

log = logging.getLogger(__name__)


def prepared_path(name: str) -> Path:
    return models_cache_dir() / name


def prepare_folder(
    target: Path, build: Callable[[Path], dict], *, force: bool = False, deep_verify: bool = True
) -> Path:
    """Build ``target`` with ``build(tmp_dir) -> manifest extras`` unless a verified copy exists.

    A file lock makes concurrent callers wait for one builder; the folder is built under a
    temporary name and renamed only when complete, then a sha256 manifest is written. A copy
    that fails verification is rebuilt.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if target.is_dir() and not force:
            problems = verify_manifest(target, deep=deep_verify)
            if not problems:
                return target
            log.warning("rebuilding %s: %s", target, "; ".join(problems[:5]))
        with atomic_dir(target) as tmp:
            extra = build(tmp)
            write_manifest(tmp, extra=extra)
    return target


def prepare_model(name: str, *, force: bool = False, deep_verify: bool = True) -> Path:
    """Return a plain Hugging Face folder for an embedded model, converting it on first use.

    Args:
        name: an embedded model name (``nichetune models list``).
        force: rebuild even if a verified copy exists.
        deep_verify: verify the cached copy by sha256 (else by file sizes, which is instant).

    Example:
        >>> path = prepare_model("smollm2-135m-instruct")  # doctest: +SKIP
    """
    spec = get_embedded(name)
    source = spec.source_path()
    if not spec.needs_conversion:
        return source

    def build(tmp: Path) -> dict:
        from .gguf_convert import convert_gguf

        info = convert_gguf(source, tmp)
        return {"source": str(source), "source_sha256": sha256_file(source), "model": name, **info}

    return prepare_folder(prepared_path(name), build, force=force, deep_verify=deep_verify)

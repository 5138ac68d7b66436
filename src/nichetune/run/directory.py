"""Writing a run directory safely: one trainer per folder (flock), replace only runs, never half-written files.

The layout is spelled in ``run.paths``; the manifest's schema in ``run.manifest``; loading in ``run.loading``.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import yaml

from ..atomic import atomic_dir
from ..errors import NichetuneError
from ..hashing import sha256_file, write_manifest
from ..methods.registry import METHODS
from ..methods.storage import save_adapted
from ..versions import git_commit, package_versions
from .manifest import RunManifest, write_manifest_file
from .paths import RECIPE, RUN_ENTRIES, RunPaths


def weights_path(run_dir: str | Path, method_name: str) -> Path:
    """``RUN/model`` or ``RUN/adapter``: where the method's saved form lives."""
    return RunPaths(run_dir).weights(METHODS[method_name].whole_model)


def recipe_text(recipe) -> str:
    body = yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    return f"# resolved recipe of this run (re-run: nichetune train {RECIPE})\n{body}"


def same_recipe(run_dir: Path, recipe) -> bool:
    """Whether the run in ``run_dir`` was started from exactly ``recipe`` (every resolved setting).

    The saved recipe is read through today's schema, so a section added to the schema since (at its default)
    is not a difference; a saved recipe today's schema refuses is."""
    from ..config.recipe import load_recipe

    saved = RunPaths(run_dir).recipe
    if not saved.is_file():
        return False
    try:
        then = load_recipe(data=yaml.safe_load(saved.read_text()))
    except (NichetuneError, ValueError):
        return False
    return then.model_dump(mode="json") == recipe.model_dump(mode="json")


def _require_folder(run_dir: Path) -> None:
    if run_dir.exists() and not run_dir.is_dir():
        raise NichetuneError(f"output_dir {run_dir} is a file, not a folder",
                             hint="choose an output_dir that is a folder (it is created if missing)")


def _has_checkpoints(run_dir: Path) -> bool:
    return any(p.is_dir() for p in RunPaths(run_dir).checkpoints.glob("step-*"))


def check_output_dir(run_dir: Path, recipe, *, fresh: bool) -> str:
    """Decide what to do with an output folder: ``new``, ``resume`` or refuse.

    Only a folder that holds a nichetune run (its ``recipe.yaml``) is ever replaced, with ``fresh``
    or not. A finished run is never replaced without ``fresh``; an unfinished one with the same
    recipe resumes; one with a different recipe is refused while it has checkpoints (they would not
    fit), and replaced when it has none (a start that failed before training: nothing to lose).
    """
    _require_folder(run_dir)
    paths = RunPaths(run_dir)
    if not run_dir.exists() or not any(p != paths.lock for p in run_dir.iterdir()):
        return "new"
    if not paths.recipe.is_file() and not paths.finished:
        raise NichetuneError(f"{run_dir} exists and is not a nichetune run (no {RECIPE})"
                             + (", and --fresh only replaces runs: nothing was deleted" if fresh else ""),
                             hint="choose another output_dir, e.g. output_dir=runs/NAME")
    if fresh:
        return "new"
    if paths.finished:
        raise NichetuneError(f"{run_dir} already holds a finished run",
                             hint="choose another output_dir (output_dir=runs/NAME) or pass --fresh to replace it")
    if not same_recipe(run_dir, recipe):
        if not _has_checkpoints(run_dir):
            return "new"
        raise NichetuneError(f"{run_dir} holds an unfinished run of a different recipe",
                             hint="use the same recipe to resume it, another output_dir, or --fresh")
    return "resume"


def clear_run(run_dir: Path) -> list[str]:
    """Remove what a run wrote (``RUN_ENTRIES`` and half-written ``.partial`` folders); other files stay.

    Returns the names of the entries left alone because no run writes them.
    """
    for name in RUN_ENTRIES:
        path = run_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
    remove_partials(run_dir)
    lock = RunPaths(run_dir).lock
    return sorted(p.name for p in run_dir.iterdir() if p != lock) if run_dir.is_dir() else []


def remove_partials(run_dir: Path) -> list[str]:
    """Delete folders a killed process left under a temporary name (``.NAME.XXXX.partial``); return them."""
    removed = []
    for folder in (run_dir, RunPaths(run_dir).checkpoints):
        for path in folder.glob(".*.partial") if folder.is_dir() else ():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
                removed.append(path.relative_to(run_dir).as_posix())
    return removed


@contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``RUN/.lock`` for the whole training: a second ``train`` on the same folder is refused.

    The lock is an ``flock``, so the kernel releases it when the holder dies; a killed run never
    leaves it stale.

    Raises:
        NichetuneError: another process is training into ``run_dir``, or ``run_dir`` is a file.
    """
    _require_folder(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(RunPaths(run_dir).lock, "a+", encoding="utf-8") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            raise NichetuneError(f"{run_dir} is being trained into by {holder}",
                                 hint="wait for that run to finish, or choose another output_dir") from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()}\n")
        fh.flush()
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def save_final(model, tokenizer, recipe, head: str, run_dir: Path, extra=None) -> Path:
    """Write the final weights (adapter or whole model) with the tokenizer, atomically, with a manifest;
    ``extra(folder)`` writes what else the weights carry (a lexical stack)."""
    target = weights_path(run_dir, recipe.method.name)
    with atomic_dir(target) as tmp:
        save_adapted(model, recipe.method, head, tmp)
        tokenizer.save_pretrained(tmp)
        if extra is not None:
            extra(tmp)
        write_manifest(tmp, extra={"kind": "nichetune-weights", "method": recipe.method.name})
    return target


def write_run_manifest(run_dir: Path, info: dict) -> RunManifest:
    """``manifest.json``: everything needed to trust and reproduce the run; its presence means complete."""
    paths = RunPaths(run_dir)
    artifacts = {}
    for path in (paths.recipe, paths.metrics):
        if path.is_file():
            artifacts[path.name] = sha256_file(path)
    for folder in (*(paths.weights(w) for w in (False, True)), paths.data):
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if path.is_file():
                artifacts[path.relative_to(run_dir).as_posix()] = sha256_file(path)
    manifest = RunManifest.model_validate({
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "code": {"git_commit": git_commit(), **package_versions()}, **info, "artifacts": artifacts})
    write_manifest_file(paths.manifest, manifest)
    return manifest

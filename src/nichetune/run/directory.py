"""The run directory, the unit of record: what a run wrote, and how later steps load it back.

    RUN/recipe.yaml      the resolved recipe (every default filled in)
    RUN/data/            train / validation / test rows with manifests, test fingerprint, quarantine
    RUN/checkpoints/     step-NNNNNNN folders (atomic, sha256 manifests)
    RUN/metrics.jsonl    one line per logged step and per evaluation
    RUN/adapter/ or RUN/model/   the final weights (safetensors) with the tokenizer and chat template
    RUN/manifest.json    versions, seeds, hardware, sha256 of inputs and artifacts; written last
    RUN/.lock            held (flock) by the one process training into RUN
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import yaml

from .. import __version__
from ..atomic import atomic_dir, atomic_write_text
from ..errors import NichetuneError
from ..hashing import sha256_file, verify_manifest, write_manifest
from ..methods.registry import METHODS
from ..methods.storage import load_adapted, merge_adapted, save_adapted
from .metrics_log import METRICS_FILE

MANIFEST = "manifest.json"
RECIPE = "recipe.yaml"
LOCK = ".lock"
# what train and eval write into a run directory; --fresh removes these and nothing else
RUN_ENTRIES = (RECIPE, MANIFEST, METRICS_FILE, "data", "checkpoints", "adapter", "model", "eval", "report.html",
               "tensorboard")


def weights_folder(method_name: str) -> str:
    return "model" if METHODS[method_name].storage == "model" else "adapter"


def recipe_text(recipe) -> str:
    body = yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    return f"# resolved recipe of this run (re-run: nichetune train {RECIPE})\n{body}"


def same_recipe(run_dir: Path, recipe) -> bool:
    """Whether the run in ``run_dir`` was started from exactly ``recipe`` (every resolved setting)."""
    saved = Path(run_dir) / RECIPE
    return saved.is_file() and yaml.safe_load(saved.read_text()) == recipe.model_dump(mode="json")


def _require_folder(run_dir: Path) -> None:
    if run_dir.exists() and not run_dir.is_dir():
        raise NichetuneError(f"output_dir {run_dir} is a file, not a folder",
                             hint="choose an output_dir that is a folder (it is created if missing)")


def _has_checkpoints(run_dir: Path) -> bool:
    return any(p.is_dir() for p in (run_dir / "checkpoints").glob("step-*"))


def check_output_dir(run_dir: Path, recipe, *, fresh: bool) -> str:
    """Decide what to do with an output folder: ``new``, ``resume`` or refuse.

    Only a folder that holds a nichetune run (its ``recipe.yaml``) is ever replaced, with ``fresh``
    or not. A finished run is never replaced without ``fresh``; an unfinished one with the same
    recipe resumes; one with a different recipe is refused while it has checkpoints (they would not
    fit), and replaced when it has none (a start that failed before training: nothing to lose).
    """
    _require_folder(run_dir)
    if not run_dir.exists() or not any(p.name != LOCK for p in run_dir.iterdir()):
        return "new"
    if not (run_dir / RECIPE).is_file() and not (run_dir / MANIFEST).is_file():
        raise NichetuneError(f"{run_dir} exists and is not a nichetune run (no {RECIPE})"
                             + (", and --fresh only replaces runs: nothing was deleted" if fresh else ""),
                             hint="choose another output_dir, e.g. output_dir=runs/NAME")
    if fresh:
        return "new"
    if (run_dir / MANIFEST).is_file():
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
    return sorted(p.name for p in run_dir.iterdir() if p.name != LOCK) if run_dir.is_dir() else []


def remove_partials(run_dir: Path) -> list[str]:
    """Delete folders a killed process left under a temporary name (``.NAME.XXXX.partial``); return them."""
    removed = []
    for folder in (run_dir, run_dir / "checkpoints"):
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
    with open(run_dir / LOCK, "a+", encoding="utf-8") as fh:
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


def save_final(model, tokenizer, recipe, task_kind: str, run_dir: Path) -> Path:
    """Write the final weights (adapter or whole model) with the tokenizer, atomically, with a manifest."""
    target = run_dir / weights_folder(recipe.method.name)
    with atomic_dir(target) as tmp:
        save_adapted(model, recipe.method, task_kind, tmp)
        tokenizer.save_pretrained(tmp)
        write_manifest(tmp, extra={"kind": "nichetune-weights", "method": recipe.method.name})
    return target


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"nichetune": __version__, "python": platform.python_version()}
    for pkg in ("torch", "transformers", "peft", "accelerate", "safetensors", "tokenizers"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def write_run_manifest(run_dir: Path, info: dict) -> dict:
    """``manifest.json``: everything needed to trust and reproduce the run; its presence means complete."""
    artifacts = {}
    for rel in (RECIPE, METRICS_FILE):
        if (run_dir / rel).is_file():
            artifacts[rel] = sha256_file(run_dir / rel)
    for folder in ("adapter", "model", "data"):
        for path in sorted((run_dir / folder).rglob("*")) if (run_dir / folder).is_dir() else []:
            if path.is_file():
                artifacts[path.relative_to(run_dir).as_posix()] = sha256_file(path)
    manifest = {"kind": "nichetune-run", "finished": datetime.now(UTC).isoformat(timespec="seconds"),
                "code": {"git_commit": _git_commit(), **_versions()}, **info, "artifacts": artifacts}
    atomic_write_text(run_dir / MANIFEST, json.dumps(manifest, indent=2, default=str) + "\n")
    return manifest


def read_run(run_dir: str | Path) -> tuple[dict, object]:
    """The manifest and the typed recipe of a finished run."""
    from ..config.recipe import load_recipe

    run_dir = Path(run_dir)
    if not (run_dir / MANIFEST).is_file():
        raise NichetuneError(f"{run_dir} is not a finished nichetune run (no {MANIFEST})",
                             hint="train one with `nichetune train RECIPE.yaml`; an interrupted run resumes "
                                  "when trained again with the same recipe")
    return json.loads((run_dir / MANIFEST).read_text()), load_recipe(run_dir / RECIPE)


def load_run(run_dir: str | Path, *, dtype=None):
    """Load a finished run's model (base + adapter, or the whole model) and its tokenizer.

    Returns:
        ``(model, tokenizer, manifest, recipe)`` with the model in eval mode.
    """
    import torch
    import transformers

    from ..models.resolve import resolve_model
    from ..models.safety import check_safetensors, refuse_pickle
    from ..models.task_model import load_base

    run_dir = Path(run_dir)
    manifest, recipe = read_run(run_dir)
    folder = run_dir / weights_folder(recipe.method.name)
    refuse_pickle(folder, "the run's weights")  # never rest safety on a loader's default
    for file in folder.glob("*.safetensors"):
        check_safetensors(file)
    problems = verify_manifest(folder, deep=False)
    if problems:
        raise NichetuneError(f"{folder} does not match its manifest: {'; '.join(problems[:3])}",
                             hint="the run's weights were changed or are incomplete; retrain with --fresh")
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)  # saved with the run: the training template
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    kind = "classification" if recipe.task == "classification" else "causal"
    if METHODS[recipe.method.name].storage == "model":
        cls = (transformers.AutoModelForSequenceClassification if kind == "classification"
               else transformers.AutoModelForCausalLM)
        model = cls.from_pretrained(folder, dtype=torch.float32, use_safetensors=True)
    else:
        resolved = resolve_model(recipe.model.name, allow_pickle=recipe.model.allow_pickle,
                                 trust_remote_code=recipe.model.trust_remote_code)
        base = load_base(resolved, recipe.task, manifest.get("labels"), allow_pickle=recipe.model.allow_pickle,
                         trust_remote_code=recipe.model.trust_remote_code)
        model = load_adapted(base, recipe.method, kind, folder)
    if dtype is not None:
        model = model.to(dtype)
    return model.eval(), tokenizer, manifest, recipe


def merge_run(run_dir: str | Path, out: str | Path) -> Path:
    """Fold a run's adapter into the base weights and write a plain transformers model folder."""
    _, recipe = read_run(run_dir)
    if not METHODS[recipe.method.name].mergeable:
        raise NichetuneError(f"{recipe.method.name} cannot be merged into the base weights: it adds computation "
                             "(bottleneck adapters) or inputs (virtual tokens)",
                             hint="serve the run directory itself; it loads the base model and the adapter")
    model, tokenizer, manifest, recipe = load_run(run_dir)
    merged = merge_adapted(model, recipe.method)
    with atomic_dir(Path(out)) as tmp:
        merged.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_manifest(tmp, extra={"kind": "nichetune-merged", "run": str(Path(run_dir).resolve()),
                                   "method": recipe.method.name, "base": manifest.get("base_model", {})})
    return Path(out)

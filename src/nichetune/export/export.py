"""``nichetune export RUN --to FORMAT --out DIR``: write the export, check its parity with the run, and seal the
folder with a manifest (source run, tool versions, parity, sha256 of every file).

The folder is built under a temporary name and renamed when complete, so a partial export never looks
finished. An export that fails parity is still written (to be inspected) but marked ``failed``; the
registry refuses it.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

from ..atomic import atomic_dir
from ..errors import NichetuneError
from ..hardware import release_memory, steady_allocator
from ..hashing import MANIFEST_NAME, sha256_file, verify_manifest, write_manifest
from ..run.loading import load_run
from ..run.paths import RunPaths
from ..versions import git_commit, package_versions
from .formats import write_export
from .parity import parity_report
from .registry import FORMATS

KIND = "nichetune-export"
SCHEMA_VERSION = 1
PARITY = "parity.json"
TOOLS = ("torch", "transformers", "peft", "safetensors", "tokenizers", "torchao", "onnx", "onnxscript", "onnxruntime",
         "gguf")


def read_export(folder: str | Path, *, deep: bool = False) -> dict:
    """The manifest of an export folder, checked against its files (sizes, or sha256 with ``deep``).

    Raises:
        NichetuneError: not an export folder, or its files do not match the manifest.
    """
    folder = Path(folder)
    path = folder / MANIFEST_NAME
    manifest = json.loads(path.read_text()) if path.is_file() else {}
    if manifest.get("kind") != KIND:
        raise NichetuneError(f"{folder} is not a nichetune export (no {MANIFEST_NAME} of kind {KIND})",
                             hint="create one with `nichetune export RUN --to FORMAT --out DIR`")
    problems = verify_manifest(folder, deep=deep)
    if problems:
        raise NichetuneError(f"{folder} does not match its manifest: {'; '.join(problems[:3])}",
                             hint="the export was changed after it was written; export it again")
    return manifest


def _check_out(out: Path, force: bool) -> None:
    if not out.exists():
        return
    if not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST_NAME).is_file()):
        raise NichetuneError(f"{out} exists and is not an export folder; nothing was changed",
                             hint="choose another --out")
    if (out / MANIFEST_NAME).is_file() and not force:
        raise NichetuneError(f"{out} already holds an export",
                             hint="choose another --out, or pass --force to replace it")


def export_run(run_dir: str | Path, to: str, out: str | Path, *, tolerance: float = 0.5, rows: int | None = None,
               force: bool = False, progress=print) -> dict:
    """Export a finished run as ``to`` into ``out`` and return the export's manifest (with its parity).

    Raises:
        NichetuneError: an unknown format, a run the format cannot hold (with the reason), or an ``out``
            folder that is not an export.
    """
    if to not in FORMATS:
        raise NichetuneError(f"unknown export format {to!r}", hint=f"use one of {', '.join(FORMATS)}")
    fmt, out = FORMATS[to], Path(out)
    _check_out(out, force)
    steady_allocator()
    run = load_run(run_dir)
    fmt.check(run)
    run_manifest, recipe = run.manifest, run.recipe
    say = progress or (lambda _text: None)
    with atomic_dir(out) as tmp:
        start = time.perf_counter()
        say(f"writing {to} ({fmt.note})")
        write_export(fmt, run, tmp)
        written_s = time.perf_counter() - start
        del run  # its model now holds the merged weights; parity loads the export first, then the run afresh
        release_memory()
        say(f"checking parity on the run's held-out rows (tolerance {tolerance:g} points)")
        parity = parity_report(run_dir, fmt, tmp, tolerance=tolerance, rows_limit=rows)
        (tmp / PARITY).write_text(json.dumps(parity, indent=1) + "\n")
        run_paths = RunPaths(Path(run_dir).resolve())
        manifest = write_manifest(tmp, extra={
            "kind": KIND, "schema_version": SCHEMA_VERSION, "format": to, "note": fmt.note,
            "created": datetime.now(UTC).isoformat(timespec="seconds"), "status": parity["status"],
            "source": {"run": str(run_paths.root), "run_manifest_sha256": sha256_file(run_paths.manifest),
                       "task": run_manifest.task, "head": run_manifest.head, "method": run_manifest.method_name,
                       "base_model": run_manifest.base_model.reference, "labels": run_manifest.labels,
                       "max_length": recipe.model.max_length},
            "tools": {"git_commit": git_commit(), **package_versions(TOOLS)}, "write_s": round(written_s, 2),
            "parity": {k: parity[k] for k in ("status", "metric", "source", "export", "change", "ci_low", "ci_high",
                                              "max_logit_diff", "disk_mb", "load_s", "p50_ms", "p95_ms", "reason")}})
    return manifest

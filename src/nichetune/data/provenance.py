"""Provenance: every dataset artifact gets a sidecar manifest with its sources and full lineage.

``FILE.manifest.json`` holds the artifact's sha256 and row count, the tool version, and
``lineage``: every step from the original sources to this file, each with its parameters,
inputs and outputs (path + sha256) and rows in / out / quarantined. A step that reads a file
with its own manifest inherits that file's lineage, so the chain survives any number of steps.
"""

from __future__ import annotations

import json
import platform
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .. import __version__
from ..atomic import atomic_write_text
from ..hashing import sha256_file

SUFFIX = ".manifest.json"


def manifest_path(artifact: str | Path) -> Path:
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + SUFFIX)


def read_artifact_manifest(artifact: str | Path) -> dict | None:
    path = manifest_path(artifact)
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def _source_entry(path: Path, notes: dict[str, str] | None) -> dict:
    entry: dict[str, Any] = {"path": str(path), "sha256": sha256_file(path) if path.is_file() else None}
    entry.update({k: v for k, v in (notes or {}).items() if v})
    return entry


def record_step(
    step: str,
    *,
    inputs: list[str | Path],
    outputs: dict[str, tuple[str | Path, int]],
    params: dict[str, Any],
    rows_in: int,
    quarantined: int = 0,
    source_notes: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write a manifest beside every output of ``step``.

    Args:
        inputs: files the step read; their manifests' lineage is inherited, and files without
            one are recorded as original sources (with ``source_notes``: licence, consent, ...).
        outputs: ``{role: (path, rows)}``, e.g. ``{"train": ("out/train.jsonl", 800)}``.
    """
    lineage: list[dict] = []
    sources: list[dict] = []
    seen: set[str] = set()
    for path in map(Path, inputs):
        parent = read_artifact_manifest(path)
        if parent is None:
            sources.append(_source_entry(path, source_notes))
            continue
        for src in parent.get("sources", []):
            if src.get("sha256") not in {s.get("sha256") for s in sources}:
                sources.append({**src, **{k: v for k, v in (source_notes or {}).items() if v}})
        for earlier in parent.get("lineage", []):
            if earlier["id"] not in seen:
                seen.add(earlier["id"])
                lineage.append(earlier)
    out_entries = {role: {"path": str(p), "sha256": sha256_file(Path(p)), "rows": n}
                   for role, (p, n) in outputs.items()}
    this = {
        "id": uuid.uuid4().hex[:12], "step": step, "params": params,
        "inputs": [{"path": str(p), "sha256": sha256_file(Path(p)) if Path(p).is_file() else None} for p in inputs],
        "outputs": out_entries, "rows_in": rows_in,
        "rows_out": sum(n for _, n in outputs.values()), "quarantined": quarantined,
        "time": datetime.now(UTC).isoformat(timespec="seconds"), "tool": f"nichetune {__version__}",
        **(extra or {}),
    }
    lineage.append(this)
    for role, entry in out_entries.items():
        manifest = {"artifact": entry["path"], "role": role, "sha256": entry["sha256"], "rows": entry["rows"],
                    "tool": {"nichetune": __version__, "python": platform.python_version()},
                    "sources": sources, "lineage": lineage}
        atomic_write_text(manifest_path(entry["path"]), json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


def lineage_report(artifact: str | Path) -> dict:
    """The manifest of ``artifact`` plus whether the file still matches its recorded sha256."""
    manifest = read_artifact_manifest(artifact)
    if manifest is None:
        return {"artifact": str(artifact), "manifest": None}
    current = sha256_file(Path(artifact)) if Path(artifact).is_file() else None
    return {"artifact": str(artifact), "manifest": manifest, "unchanged": current == manifest["sha256"]}

"""What ``nichetune serve TARGET...`` names: a run directory, an export folder, a registry reference or a model.

Each target becomes a ``Target``: the served name (what a request's ``model`` picks), where its weights and its
run record are, and what it can answer. Nothing is loaded here; the pool loads on first use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..errors import NichetuneError
from ..hashing import MANIFEST_NAME
from ..infer.calibrated import Calibration, read_calibration
from ..models.heads import HEADS
from ..run.paths import RunPaths

ENCODER = "encoder"  # the head of a bare encoder served for embeddings (not a training head)
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$")


@dataclass(frozen=True)
class Target:
    """One served model.

    Attributes:
        name: the ``model`` id requests use.
        kind: ``run``, ``export`` or ``model`` (a plain model folder or embedded name).
        weights: the folder the weights load from (a run's ``adapter/`` or ``model/``, an export folder).
        record: the run directory (or a registry's copy of its record) holding the manifest, recipe and
            evaluation; None for a plain model.
        head: the model head (``classification``, ``causal``, ...), or ``encoder`` for a bare encoder.
        labels: a classifier's labels in logit order.
        export_format: the export's format, for export targets.
        calibration: what evaluation fitted (temperature, conformal threshold), for evaluated classifiers.
        reference: what the user typed.
        version: the registry version (``NAME@3``) or the run or export folder's name, logged with each answer.
    """

    name: str
    kind: str
    weights: Path
    record: Path | None
    head: str
    labels: list[str] = field(default_factory=list)
    export_format: str | None = None
    calibration: Calibration | None = None
    reference: str = ""
    max_length: int = 512
    version: str = ""  # what answers, as the prediction log records it: NAME@VERSION, or the folder's name

    @property
    def is_peft_adapter(self) -> bool:
        return self.kind == "run" and (self.weights / "adapter_config.json").is_file()

    @property
    def capabilities(self) -> list[str]:
        if self.head == ENCODER:
            return ["embeddings"]
        caps = ["classify", "embeddings"] if HEADS[self.head].fresh else ["chat", "completions"]
        if self.export_format in ("onnx", "onnx-int8"):  # the graph gives logits only
            caps = ["classify"]
        return caps


def _split_name(spec: str) -> tuple[str | None, str]:
    if "=" in spec and not Path(spec).exists():
        name, ref = spec.split("=", 1)
        return name, ref
    return None, spec


def _check_name(name: str, spec: str) -> str:
    if not NAME.match(name):
        raise NichetuneError(f"{spec}: {name!r} is not a usable model name",
                             hint="name it explicitly: NAME=TARGET with letters, digits, '.', '_', '-'")
    return name


def _from_run(record: Path, weights: Path | None, name: str, spec: str) -> Target:
    from ..methods.registry import METHODS
    from ..run.loading import read_run

    manifest, recipe = read_run(record)
    weights = weights or RunPaths(record).weights(METHODS[manifest.method_name].whole_model)
    return Target(name=name, kind="run", weights=weights, record=record, head=manifest.head,
                  labels=list(manifest.labels or []), calibration=read_calibration(record), reference=spec,
                  max_length=recipe.model.max_length, version=f"run:{record.name}")


def _from_export(folder: Path, record: Path | None, name: str, spec: str) -> Target:
    from ..export.export import read_export

    manifest = read_export(folder)
    if manifest["status"] != "passed":
        raise NichetuneError(f"{folder} failed its parity check, so it is not served",
                             hint="re-export it; `nichetune export` says why it failed")
    source = manifest["source"]
    run_dir = record or Path(source["run"])
    record = run_dir if RunPaths(run_dir).finished else None
    return Target(name=name, kind="export", weights=folder, record=record, head=source["head"],
                  labels=list(source.get("labels") or []), export_format=manifest["format"],
                  calibration=read_calibration(record) if record else None, reference=spec,
                  max_length=int(source.get("max_length") or 512), version=f"export:{folder.name}")


def _from_registry(ref: str, registry_root: str | Path | None, spec: str, name: str | None) -> Target:
    from ..registry import open_registry

    row = open_registry(registry_root).resolve(ref)
    artifact = Path(row["path"])
    name = name or row["name"]
    target = _from_export(artifact / "model", artifact / "run", name, spec) if row["kind"] == "export" else \
        _from_run(artifact / "run", artifact / "model", name, spec)
    return replace(target, version=f"{row['name']}@{row['version']}")


def _from_model(ref: str, name: str, spec: str) -> Target:
    from ..models.resolve import resolve_model

    resolved = resolve_model(ref)
    if resolved.is_causal_lm:
        head = "causal"
    elif resolved.is_sequence_classifier:
        raise NichetuneError(f"{spec} is a classifier without a nichetune run record",
                             hint="serve the run it came from, so probabilities carry its calibration")
    else:
        head = ENCODER
    return Target(name=name, kind="model", weights=resolved.path, record=None, head=head, reference=spec,
                  max_length=int(resolved.config.get("max_position_embeddings") or 512), version=f"model:{ref}")


def parse_target(spec: str, *, registry_root: str | Path | None = None) -> Target:
    """``[NAME=]TARGET``: a run directory, an export folder, a registry reference (``NAME@alias``) or a model.

    Raises:
        NichetuneError: the target is none of these, or is not fit to serve (a failed export, an unfinished run).
    """
    name, ref = _split_name(spec)
    path = Path(ref).expanduser()
    if path.is_dir() and (path / MANIFEST_NAME).is_file():
        return _from_export(path.resolve(), None, _check_name(name or path.name, spec), spec)
    if path.is_dir() and RunPaths(path).manifest.is_file():
        return _from_run(path.resolve(), None, _check_name(name or path.name, spec), spec)
    if "@" in ref and not path.exists():
        return _from_registry(ref, registry_root, spec, name and _check_name(name, spec))
    if path.is_dir() and not (path / "config.json").is_file():
        raise NichetuneError(f"{ref} is neither a finished run, an export nor a model folder",
                             hint="serve a run directory, an export folder, a registry NAME@ALIAS, or a model")
    return _from_model(ref, _check_name(name or path.name, spec), spec)


def parse_targets(specs: list[str], *, registry_root: str | Path | None = None) -> list[Target]:
    targets = [parse_target(s, registry_root=registry_root) for s in specs]
    seen: dict[str, str] = {}
    for t in targets:
        if t.name in seen:
            raise NichetuneError(f"two targets are named {t.name!r} ({seen[t.name]} and {t.reference})",
                                 hint="name them: NAME=TARGET")
        seen[t.name] = t.reference
    return targets


def describe(target: Target) -> dict:
    """What ``/v1/models`` says about a target (no server paths)."""
    return {"kind": target.kind, "head": target.head, "capabilities": target.capabilities,
            "labels": target.labels or None, "format": target.export_format,
            "calibration": target.calibration.as_dict() if target.calibration else None}

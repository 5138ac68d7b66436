"""``RUN/manifest.json`` as a typed contract: ``RunManifest``, written once by train, read by everything after.

The file carries ``schema_version``. ``read_manifest`` upgrades what older versions wrote (version 1 had
no ``schema_version`` and no ``head``) and refuses versions newer than this code knows.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from ..atomic import atomic_write_text
from ..errors import NichetuneError
from ..tasks import task_spec

SCHEMA_VERSION = 2


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow")


class BaseModelInfo(_Part):
    reference: str
    path: str
    source: str
    architectures: list[str] = []


class Parameters(_Part):
    trainable: int
    total: int
    trainable_share: float


class Hardware(_Part):
    device: str
    precision: str
    world_size: int = 1
    threads: int | None = None


class DataInfo(_Part):
    sources: list[dict[str, Any]]
    rows: dict[str, int]
    quarantined: int = 0
    train_items: int | None = None
    packed: bool = False


class Result(_Part):
    steps: int
    planned_steps: int | None = None
    stopped_early: bool = False
    final_weights: str | None = None
    best: dict[str, Any] | None = None
    validation_before: dict[str, float] | None = None
    validation: dict[str, float] | None = None
    test: dict[str, float] | None = None
    resumed_from: str | None = None
    train_seconds: float = 0.0
    wall_seconds: float = 0.0
    supervised_tokens_per_s: float = 0.0


class RunManifest(_Part):
    """Everything needed to trust and reproduce a run: code, seeds, data, hardware, results, artifact sha256."""

    schema_version: int = SCHEMA_VERSION
    kind: Literal["nichetune-run"] = "nichetune-run"
    finished: str
    code: dict[str, str | None]
    task: str
    head: str  # the model head (models.heads.HEADS key) the run's weights carry
    seed: int
    labels: list[str] | None = None
    base_model: BaseModelInfo
    method: dict[str, Any]
    parameters: Parameters
    hardware: Hardware
    data: DataInfo
    result: Result
    artifacts: dict[str, str]

    @property
    def method_name(self) -> str:
        return self.method["name"]

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2, default=str) + "\n"


def _v1_to_v2(raw: dict) -> dict:
    """Version 1 (no schema_version) did not record the model head; it follows from the task."""
    return {**raw, "schema_version": 2, "head": task_spec(raw["task"]).head}


UPGRADES = {1: _v1_to_v2}  # version -> the function that lifts it to version + 1


def upgrade(raw: dict) -> dict:
    """Lift a manifest dict to ``SCHEMA_VERSION``, one version at a time."""
    version = raw.get("schema_version", 1)
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise NichetuneError(f"manifest schema_version {version!r} is newer than this nichetune knows "
                             f"({SCHEMA_VERSION})", hint="upgrade nichetune to read this run")
    while version < SCHEMA_VERSION:
        raw = UPGRADES[version](raw)
        version = raw["schema_version"]
    return raw


def read_manifest(path: str | Path) -> RunManifest:
    """The typed manifest at ``path``, upgraded from older schema versions.

    Raises:
        NichetuneError: not JSON, not a run manifest, or a newer schema; naming the file and field.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NichetuneError(f"{path}: not a JSON manifest ({exc})",
                             hint="the run's manifest is damaged; retrain the run with --fresh") from None
    if not isinstance(raw, dict) or raw.get("kind") != "nichetune-run":
        raise NichetuneError(f"{path}: not a nichetune run manifest (kind is not 'nichetune-run')",
                             hint="point at a run directory written by nichetune train")
    try:
        return RunManifest.model_validate(upgrade(raw))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise NichetuneError(f"{path}: field {where!r}: {first['msg']}",
                             hint="the run's manifest is damaged; retrain the run with --fresh") from None


def write_manifest_file(path: Path, manifest: RunManifest) -> None:
    atomic_write_text(path, manifest.to_json())

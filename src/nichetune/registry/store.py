"""The model registry: immutable numbered versions of runs and exports, aliases with their full history,
rollback, verification and lineage.

Each version is a folder under ``ROOT/artifacts/NAME/VERSION`` copied at registration (the model files,
and the run's record: manifest, recipe, metrics, evaluation, data manifests — never the rows), sealed
with the sha256 of every file. The catalogue is a database: SQLite in ``ROOT/registry.db`` by default,
or any SQLAlchemy URL (PostgreSQL in production).
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from ..errors import NichetuneError
from ..hashing import MANIFEST_NAME, sha256_file, verify_manifest, write_manifest
from ..models.safety import refuse_pickle
from ..run.evaluation import read_eval_metrics
from ..run.paths import RunPaths
from . import schema
from .names import Ref, check_name, inside, parse_ref

ATTEMPTS = 20


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _who(who: str | None) -> str:
    if who:
        return who
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def _copy_run_record(run_dir: Path, dest: Path) -> None:
    """The run's evidence without its rows or checkpoints (``RunPaths.record``): what the card and lineage read;
    ``dest`` keeps the run's layout, so ``RunPaths(dest)`` reads it."""
    for path in RunPaths(run_dir).record():
        target = dest / path.relative_to(run_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def _stage_run(run_dir: Path, staging: Path) -> dict:
    from ..methods.registry import METHODS
    from ..run.loading import read_run

    manifest, _ = read_run(run_dir)
    weights = RunPaths(run_dir).weights(METHODS[manifest.method_name].whole_model)
    refuse_pickle(weights, "the run's weights")
    problems = verify_manifest(weights)
    if problems:
        raise NichetuneError(f"{weights} does not match its manifest: {'; '.join(problems[:3])}",
                             hint="the run's weights changed after training; retrain it")
    shutil.copytree(weights, staging / "model")
    (staging / "run").mkdir()
    _copy_run_record(run_dir, staging / "run")
    metrics_path = RunPaths(run_dir).eval_metrics
    headline = read_eval_metrics(metrics_path).get("primary") if metrics_path.is_file() else None
    return {"kind": "run", "format": "run", "task": manifest.task, "method": manifest.method_name,
            "base_model": manifest.base_model.reference, "weights": weights.name,
            "summary": {"headline": headline, "test": manifest.result.test, "status": "trained"}}


def _stage_export(folder: Path, staging: Path) -> dict:
    from ..export.export import read_export

    manifest = read_export(folder, deep=True)
    if manifest["status"] != "passed":
        raise NichetuneError(f"{folder} failed its parity check: {manifest['parity'].get('reason')}",
                             hint="fix or re-export it; a failed export is never registered")
    refuse_pickle(folder, "the export")
    shutil.copytree(folder, staging / "model")
    run_dir = Path(manifest["source"]["run"])
    (staging / "run").mkdir()
    if RunPaths(run_dir).finished:
        if sha256_file(RunPaths(run_dir).manifest) != manifest["source"]["run_manifest_sha256"]:
            raise NichetuneError(f"{run_dir} changed since {folder} was exported from it",
                                 hint="export the run again, then register the new export")
        _copy_run_record(run_dir, staging / "run")
    source = manifest["source"]
    return {"kind": "export", "format": manifest["format"], "task": source["task"], "method": source["method"],
            "base_model": source["base_model"], "summary": {"parity": manifest["parity"], "status": "passed"}}


class Registry:
    """A registry at ``root`` (folders) with its catalogue at ``url`` (default SQLite in ``root``); with
    ``mlflow_uri``, versions and alias moves are mirrored into that MLflow model registry too."""

    def __init__(self, root: str | Path, url: str | None = None, *, mlflow_uri: str | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.url = url or f"sqlite:///{(self.root / 'registry.db').resolve()}"
        kwargs = {"connect_args": {"timeout": 60}} if self.url.startswith("sqlite") else {"pool_pre_ping": True}
        self.engine = sa.create_engine(self.url, **kwargs)
        self.schema_version = schema.migrate(self.engine)
        self.mirror = None
        if mlflow_uri:
            from .mlflow_mirror import MlflowMirror

            self.mirror = MlflowMirror(mlflow_uri)

    def close(self) -> None:
        self.engine.dispose()

    # --- registering ------------------------------------------------------------------------------------------

    def register(self, source: str | Path, name: str, *, who: str | None = None, note: str = "") -> dict:
        """Copy a finished run or a passed export in as the next version of ``name``; return the version."""
        check_name(name)
        source = Path(source)
        staging_root = inside(self.root, ".staging")
        staging_root.mkdir(exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{name}.", dir=staging_root))
        try:
            if (source / MANIFEST_NAME).is_file():
                info = _stage_export(source, staging)
            elif RunPaths(source).finished:
                info = _stage_run(source, staging)
            else:
                raise NichetuneError(f"{source} is neither a finished run nor an export",
                                     hint="register a run directory (after train) or an export folder")
            write_manifest(staging, extra={"kind": "nichetune-registry-version", "name": name,
                                           "source": str(source.resolve()), **{k: info[k] for k in ("kind", "format")}})
            row = self._commit(name, staging, source, info, _who(who), note)
            if self.mirror is not None:
                row["mlflow_version"] = self.mirror.register(row)
            return row
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _commit(self, name: str, staging: Path, source: Path, info: dict, who: str, note: str) -> dict:
        digest = sha256_file(staging / MANIFEST_NAME)
        for _ in range(ATTEMPTS):
            try:
                with self.engine.begin() as conn:
                    if conn.execute(sa.select(schema.models.c.name).where(schema.models.c.name == name)).first() \
                            is None:
                        conn.execute(schema.models.insert().values(name=name, created_at=_now(), created_by=who))
                    latest = conn.execute(sa.select(sa.func.max(schema.versions.c.version))
                                          .where(schema.versions.c.name == name)).scalar() or 0
                    version = latest + 1
                    row = {"name": name, "version": version, "kind": info["kind"], "format": info["format"],
                           "source": str(source.resolve()), "task": info["task"], "method": info["method"],
                           "base_model": info["base_model"], "manifest_sha256": digest,
                           "summary": json.dumps(info["summary"]), "created_at": _now(), "created_by": who,
                           "note": note}
                    conn.execute(schema.versions.insert().values(**row))
                    final = inside(self.root, "artifacts", name, str(version))
                    if final.exists():  # left by a registration whose transaction did not commit
                        shutil.rmtree(final)
                    final.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(staging, final)
                return {**row, "summary": info["summary"], "path": str(final)}
            except sa.exc.IntegrityError:  # another process took this version number first: take the next
                continue
        raise NichetuneError(f"could not allocate a version of {name} after {ATTEMPTS} attempts",
                             hint="too many registrations at once; try again")

    # --- reading ----------------------------------------------------------------------------------------------

    def _row(self, conn, name: str, version: int) -> dict:
        row = conn.execute(sa.select(schema.versions).where(schema.versions.c.name == name,
                                                            schema.versions.c.version == version)).mappings().first()
        if row is None:
            raise NichetuneError(f"{name}@{version} is not in the registry", hint="see `nichetune registry list`")
        return {**row, "summary": json.loads(row["summary"])}

    def resolve(self, ref: str | Ref) -> dict:
        """The version a reference names (latest for a bare name)."""
        ref = parse_ref(ref) if isinstance(ref, str) else ref
        with self.engine.connect() as conn:
            if ref.alias is not None:
                version = conn.execute(sa.select(schema.aliases.c.version).where(
                    schema.aliases.c.name == ref.name, schema.aliases.c.alias == ref.alias)).scalar()
                if version is None:
                    raise NichetuneError(f"{ref} names no version", hint=f"set it: nichetune registry alias "
                                                                         f"{ref.name}@VERSION {ref.alias}")
            elif ref.version is not None:
                version = ref.version
            else:
                version = conn.execute(sa.select(sa.func.max(schema.versions.c.version))
                                       .where(schema.versions.c.name == ref.name)).scalar()
                if version is None:
                    raise NichetuneError(f"{ref.name} is not in the registry", hint="see `nichetune registry list`")
            row = self._row(conn, ref.name, version)
            row["aliases"] = sorted(a for (a,) in conn.execute(sa.select(schema.aliases.c.alias).where(
                schema.aliases.c.name == ref.name, schema.aliases.c.version == version)))
        row["path"] = str(inside(self.root, "artifacts", row["name"], str(row["version"])))
        return row

    def list(self) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(schema.versions.c.name, sa.func.count().label("versions"),
                                          sa.func.max(schema.versions.c.version).label("latest"))
                                .group_by(schema.versions.c.name).order_by(schema.versions.c.name)).mappings().all()
            held = conn.execute(sa.select(schema.aliases)).mappings().all()
        return [{**r, "aliases": {a["alias"]: a["version"] for a in held if a["name"] == r["name"]}} for r in rows]

    def versions(self, name: str) -> list[dict]:
        check_name(name)
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(schema.versions).where(schema.versions.c.name == name)
                                .order_by(schema.versions.c.version)).mappings().all()
        return [{**r, "summary": json.loads(r["summary"])} for r in rows]

    # --- aliases ----------------------------------------------------------------------------------------------

    def set_alias(self, ref: str, alias: str, *, who: str | None = None, why: str = "",
                  action: str = "set") -> dict:
        """Point ``alias`` at the version ``ref`` names, atomically, recording who, when and why."""
        check_name(alias, "alias")
        target = self.resolve(ref)
        name, version = target["name"], target["version"]
        with self.engine.begin() as conn:
            current = conn.execute(sa.select(schema.aliases.c.version).where(
                schema.aliases.c.name == name, schema.aliases.c.alias == alias).with_for_update()).scalar()
            if current is None:
                conn.execute(schema.aliases.insert().values(name=name, alias=alias, version=version))
            else:
                conn.execute(schema.aliases.update().where(schema.aliases.c.name == name,
                                                           schema.aliases.c.alias == alias).values(version=version))
            event = {"name": name, "alias": alias, "action": action, "from_version": current, "to_version": version,
                     "who": _who(who), "at": _now(), "why": why}
            conn.execute(schema.alias_events.insert().values(**event))
        if self.mirror is not None:
            self.mirror.set_alias(name, alias, version)
        return event

    def rollback(self, name: str, alias: str, *, who: str | None = None, why: str = "") -> dict:
        """Move ``alias`` back to the version it pointed at before its current one."""
        check_name(name)
        check_name(alias, "alias")
        events = self.history(name, alias)
        current = events[-1]["to_version"] if events else None
        # walk back: the holder before the latest move that brought the alias to its current version
        previous = next((e["from_version"] for e in reversed(events)
                         if e["to_version"] == current and e["from_version"] not in (None, current)), None)
        if previous is None:
            raise NichetuneError(f"{name}@{alias} has no earlier version to roll back to",
                                 hint=f"see `nichetune registry history {name}`")
        return self.set_alias(f"{name}@{previous}", alias, who=who, why=why or "rollback", action="rollback")

    def history(self, name: str, alias: str | None = None) -> list[dict]:
        check_name(name)
        query = sa.select(schema.alias_events).where(schema.alias_events.c.name == name)
        if alias is not None:
            query = query.where(schema.alias_events.c.alias == alias)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query.order_by(schema.alias_events.c.id)).mappings()]

    # --- trust ------------------------------------------------------------------------------------------------

    def verify(self, ref: str) -> list[str]:
        """Problems with a version's files (sha256 of every file against its manifest, and the manifest's own
        sha256 against the catalogue); empty means verified."""
        return self._problems(self.resolve(ref))

    @staticmethod
    def _problems(row: dict) -> list[str]:
        folder = Path(row["path"])
        if not (folder / MANIFEST_NAME).is_file():
            return [f"{folder} is missing its manifest"]
        problems = verify_manifest(folder)
        if sha256_file(folder / MANIFEST_NAME) != row["manifest_sha256"]:
            problems.append("the version's manifest differs from the one recorded at registration")
        return problems

    def open(self, ref: str) -> dict:
        """A version ready to load: verified (sha256) and free of pickle files."""
        row = self.resolve(ref)
        problems = self._problems(row)
        if problems:
            raise NichetuneError(f"{row['name']}@{row['version']} failed verification: {'; '.join(problems[:3])}",
                                 hint="its files were changed after registration; register the source again")
        refuse_pickle(Path(row["path"]) / "model", f"{row['name']}@{row['version']}")
        return row


def open_registry(root: str | Path | None = None, url: str | None = None, mlflow_uri: str | None = None) -> Registry:
    """The registry at ``root`` (default: $NICHETUNE_REGISTRY or ./registry), ``url`` ($NICHETUNE_REGISTRY_DB)
    and, when given, an MLflow mirror at ``mlflow_uri`` ($NICHETUNE_REGISTRY_MLFLOW)."""
    root = root or os.environ.get("NICHETUNE_REGISTRY") or "registry"
    return Registry(root, url or os.environ.get("NICHETUNE_REGISTRY_DB"),
                    mlflow_uri=mlflow_uri or os.environ.get("NICHETUNE_REGISTRY_MLFLOW"))

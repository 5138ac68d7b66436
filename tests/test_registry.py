"""The registry on SQLite and on a real PostgreSQL server: numbered immutable versions, aliases with history
and rollback, sha256 verification, refusal of failed exports and pickle, names that cannot escape the root,
concurrent registrations, migrations, lineage down to the data and the model card."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pytest
import sqlalchemy as sa

from nichetune.cli import main
from nichetune.config.recipe import load_recipe
from nichetune.errors import NichetuneError
from nichetune.registry import Registry, schema
from nichetune.train.run import train
from tiny_data import review_rows, write_jsonl


@pytest.fixture(scope="module")
def sources(tmp_path_factory, tiny_bert_dir) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("registry-src")
    data = write_jsonl(root / "d.jsonl", review_rows(120, seed=4, own=3, noise=2))
    recipe = load_recipe(data={
        "task": "classification", "output_dir": str(root / "run"), "model": {"name": str(tiny_bert_dir)},
        "data": {"train": str(data)}, "method": {"name": "lora", "r": 4, "target_modules": ["query", "value"]},
        "train": {"epochs": 3, "batch_size": 8, "lr": 2e-2, "precision": "fp32"}})
    train(recipe)
    run = root / "run"
    assert main(["eval", str(run), "--no-latency", "--no-zero-shot", "--no-audit"]) == 0
    assert main(["export", str(run), "--to", "bf16", "--out", str(root / "bf16")]) == 0
    return {"run": run, "export": root / "bf16"}


@pytest.fixture(params=["sqlite", "postgresql"])
def registry(request, tmp_path) -> Registry:
    url = None
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres_url")
        engine = sa.create_engine(url)
        with engine.begin() as conn:  # a clean catalogue per test
            schema.metadata.drop_all(conn)
        engine.dispose()
    reg = Registry(tmp_path / "registry", url)
    yield reg
    reg.close()


def test_versions_aliases_history_and_rollback(registry, sources):
    one = registry.register(sources["export"], "drug", who="ana", note="triage of drug reviews")
    two = registry.register(sources["run"], "drug", who="ben")
    assert (one["version"], one["kind"], one["format"]) == (1, "export", "bf16")
    assert (two["version"], two["kind"]) == (2, "run")
    kept = {p.relative_to(two["path"]).as_posix() for p in Path(two["path"]).rglob("*.jsonl")}
    assert kept == {"run/metrics.jsonl"}  # the run's record keeps data manifests, never the rows
    assert (Path(two["path"]) / "run" / "data" / "train.jsonl.manifest.json").is_file()
    assert registry.resolve("drug")["version"] == 2  # a bare name is the latest version
    registry.set_alias("drug@1", "champion", who="ana", why="first release")
    registry.set_alias("drug@2", "champion", who="ben", why="adapter run is smaller")
    assert registry.resolve("drug@champion")["version"] == 2
    back = registry.rollback("drug", "champion", who="cleo", why="latency regression")
    assert (back["from_version"], back["to_version"], back["action"]) == (2, 1, "rollback")
    assert registry.resolve("drug@champion")["aliases"] == ["champion"]
    moves = [(e["action"], e["from_version"], e["to_version"], e["who"], e["why"]) for e in registry.history("drug")]
    assert moves == [("set", None, 1, "ana", "first release"), ("set", 1, 2, "ben", "adapter run is smaller"),
                     ("rollback", 2, 1, "cleo", "latency regression")]
    assert registry.list() == [{"name": "drug", "versions": 2, "latest": 2, "aliases": {"champion": 1}}]
    with pytest.raises(NichetuneError, match="no earlier version"):
        registry.rollback("drug", "staging")


def test_versions_are_immutable_copies_verified_by_sha256(registry, sources):
    row = registry.register(sources["export"], "drug")
    assert registry.verify("drug@1") == []
    config = Path(row["path"]) / "model" / "config.json"
    config.write_text(config.read_text().replace("{", "{ ", 1))
    assert registry.verify("drug@1") == ["sha256 mismatch for model/config.json"]
    with pytest.raises(NichetuneError, match="failed verification"):
        registry.open("drug@1")
    fresh = registry.register(sources["export"], "drug")
    (Path(fresh["path"]) / "model" / "pytorch_model.bin").write_bytes(b"\x80\x04not really")
    with pytest.raises(NichetuneError):
        registry.open("drug@2")  # an extra file breaks the manifest, and pickle is refused besides


def test_a_failed_export_and_non_artifacts_are_refused(registry, sources, tmp_path):
    failed = tmp_path / "failed"
    shutil.copytree(sources["export"], failed)
    manifest = json.loads((failed / "nichetune-manifest.json").read_text())
    manifest["status"] = "failed"
    manifest["parity"]["reason"] = "accuracy dropped by 3.00 points (tolerance 0.5)"
    (failed / "nichetune-manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(NichetuneError, match="failed its parity check: accuracy dropped"):
        registry.register(failed, "drug")
    with pytest.raises(NichetuneError, match="neither a finished run nor an export"):
        registry.register(tmp_path, "drug")
    assert registry.list() == []


@pytest.mark.parametrize("name", ["../escape", "/abs", "a/b", "%2e%2e", "%252e%252e", "..", "Drug", "", "a" * 65,
                                  "x..y", ".hidden"])
def test_names_never_escape_the_root(registry, sources, name):
    with pytest.raises(NichetuneError, match="not allowed"):
        registry.register(sources["export"], name)
    with pytest.raises(NichetuneError, match="not allowed"):
        registry.resolve(f"{name}@1")
    assert not (registry.root.parent / "escape").exists()


def test_a_symlink_out_of_the_root_is_refused(registry, sources, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (registry.root / "artifacts").mkdir(parents=True, exist_ok=True)
    (registry.root / "artifacts" / "drug").symlink_to(outside, target_is_directory=True)
    with pytest.raises(NichetuneError, match="outside the registry root"):
        registry.register(sources["export"], "drug")
    assert list(outside.iterdir()) == []


def _register(root: str, url: str | None, source: str) -> int:
    reg = Registry(root, url)
    try:
        return reg.register(source, "drug")["version"]
    finally:
        reg.close()


def test_concurrent_registrations_get_distinct_increasing_versions(registry, sources):
    with ProcessPoolExecutor(max_workers=4, mp_context=get_context("spawn")) as pool:
        jobs = [pool.submit(_register, str(registry.root), registry.url, str(sources["export"])) for _ in range(6)]
        got = [job.result() for job in jobs]
    assert sorted(got) == [1, 2, 3, 4, 5, 6]
    assert [v["version"] for v in registry.versions("drug")] == [1, 2, 3, 4, 5, 6]
    assert all(registry.verify(f"drug@{v}") == [] for v in got)


def test_an_older_catalogue_is_migrated_when_opened(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    assert schema.migrate(engine, {1: schema.MIGRATIONS[1]}) == 1  # a catalogue written before migration 2
    with engine.connect() as conn:
        assert not any(ix["name"] == "ix_alias_events_name_alias"
                       for ix in sa.inspect(conn).get_indexes(schema.alias_events.name))
    engine.dispose()
    reg = Registry(tmp_path / "reg", url)
    assert reg.schema_version == schema.LATEST == 2
    with reg.engine.connect() as conn:
        assert schema.current_version(conn) == 2
        assert any(ix["name"] == "ix_alias_events_name_alias"
                   for ix in sa.inspect(conn).get_indexes(schema.alias_events.name))
    assert schema.migrate(reg.engine) == 2  # idempotent
    reg.close()


def test_lineage_and_card_through_the_cli(sources, tmp_path, capsys):
    root = str(tmp_path / "reg")
    assert main(["registry", "register", str(sources["run"]), "--name", "drug", "--root", root,
                 "--note", "Flag reviews for pharmacovigilance triage"]) == 0
    assert main(["registry", "register", str(sources["export"]), "--name", "drug", "--root", root]) == 0
    assert main(["registry", "alias", "drug@1", "champion", "--root", root, "--why", "first"]) == 0
    assert main(["registry", "promote", "drug@2", "--root", root, "--why", "bf16 is smaller"]) == 0
    assert main(["registry", "rollback", "drug", "--root", root]) == 0
    capsys.readouterr()
    assert main(["registry", "show", "drug@champion", "--lineage", "--root", root, "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    run_manifest = json.loads((sources["run"] / "manifest.json").read_text())
    train_step = next(s for s in shown["lineage"] if s["what"].startswith("data/train.jsonl"))
    assert train_step["sha256"] == run_manifest["artifacts"]["data/train.jsonl"]
    assert shown["version"] == 1 and shown["aliases"] == ["champion"]
    assert main(["registry", "history", "drug", "--root", root]) == 0
    history = capsys.readouterr().out
    assert "rollback" in history and "bf16 is smaller" in history
    out = tmp_path / "card.md"
    assert main(["registry", "card", "drug@1", "--root", root, "--out", str(out)]) == 0
    card = out.read_text()
    metrics = json.loads((sources["run"] / "eval" / "metrics.json").read_text())
    for heading in ("## Intended use", "## Training data", "## PII handling", "## Evaluation evidence",
                    "## Known limits", "## Lineage"):
        assert heading in card
    assert "Flag reviews for pharmacovigilance triage" in card
    assert f"{metrics['primary']['name']} {metrics['primary']['value']:.4f}" in card
    assert main(["registry", "card", "drug@2", "--root", root, "--html", "--out", str(tmp_path / "card.html")]) == 0
    assert "export parity (bf16): passed" in (tmp_path / "card.html").read_text()
    assert main(["registry", "verify", "drug@2", "--root", root]) == 0
    capsys.readouterr()
    assert main(["registry", "list", "--root", root, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"name": "drug", "versions": 2, "latest": 2,
                                                    "aliases": {"champion": 1}}]


def test_the_mlflow_mirror_holds_the_same_versions_and_aliases(sources, tmp_path):
    """Registered against a local sqlite:/// MLflow store: versions carry their nichetune number and
    manifest sha256; the champion alias follows every move, the rollback included."""
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    registry = Registry(tmp_path / "registry", mlflow_uri=uri)
    one = registry.register(sources["export"], "drug")
    two = registry.register(sources["run"], "drug")
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    mirrored = {mv.tags["nichetune_version"]: mv for mv in client.search_model_versions("name='drug'")}
    assert set(mirrored) == {"1", "2"} and mirrored["1"].tags["manifest_sha256"] == one["manifest_sha256"]
    assert mirrored["2"].source == two["path"] and mirrored["2"].tags["kind"] == "run"
    registry.set_alias("drug@1", "champion")
    registry.set_alias("drug@2", "champion")
    assert client.get_model_version_by_alias("drug", "champion").tags["nichetune_version"] == "2"
    registry.rollback("drug", "champion")
    assert client.get_model_version_by_alias("drug", "champion").tags["nichetune_version"] == "1"
    registry.close()


def test_an_ab_winner_is_promoted_by_its_logged_version_and_rolled_back(sources, tmp_path, capsys):
    """`ab promote` moves the alias to the winning arm's registry version; `ab rollback` moves it back."""
    from nichetune.monitor.ab import promote

    registry = Registry(tmp_path / "registry")
    registry.register(sources["export"], "drug")
    registry.register(sources["run"], "drug")
    registry.set_alias("drug@1", "champion")
    report = {"experiment": "ab", "winner": "b", "sentence": "b is better than a.",
              "stats": {"a": {"versions": ["drug@1"]}, "b": {"versions": ["drug@2"]}}}
    event = promote(report, registry)
    assert (event["from_version"], event["to_version"], event["action"]) == (1, 2, "promote")
    assert registry.history("drug", "champion")[-1]["why"] == "A/B ab: b is better than a."
    registry.close()
    assert main(["ab", "rollback", "drug", "--registry", str(tmp_path / "registry")]) == 0
    assert "drug@champion: 2 -> 1 (rollback)" in capsys.readouterr().out
    with pytest.raises(NichetuneError, match="not served as one registry version"):
        promote({**report, "stats": {"b": {"versions": ["run:b"]}}}, Registry(tmp_path / "registry"))

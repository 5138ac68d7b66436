"""The run directory as a typed contract: the manifest's schema and upgrades, the paths, load_run's result."""

import json

import pytest

from nichetune.errors import NichetuneError
from nichetune.run import SCHEMA_VERSION, RunManifest, RunPaths, read_manifest
from nichetune.run.paths import RUN_ENTRIES

# what train wrote before schema_version existed (version 1): no schema_version, no head
V1 = {
    "kind": "nichetune-run", "finished": "2026-10-01T12:00:00+00:00",
    "code": {"git_commit": None, "nichetune": "0.1.0", "torch": "2.13.0"},
    "task": "sft", "seed": 3, "labels": None,
    "base_model": {"reference": "smollm2-135m-instruct", "path": "/m", "source": "embedded",
                   "architectures": ["LlamaForCausalLM"]},
    "method": {"name": "lora", "r": 8},
    "parameters": {"trainable": 10, "total": 100, "trainable_share": 0.1},
    "hardware": {"device": "cpu", "precision": "float32", "world_size": 1, "threads": 2},
    "data": {"sources": [{"kind": "file", "path": "/d.jsonl"}], "rows": {"train": 8, "validation": 2, "test": 2},
             "quarantined": 0, "train_items": 8, "packed": False},
    "result": {"steps": 4, "planned_steps": 4, "stopped_early": False, "final_weights": "last", "best": None,
               "validation_before": {"loss": 3.0}, "validation": {"loss": 2.0}, "test": None, "resumed_from": None,
               "train_seconds": 1.5, "wall_seconds": 2.0, "supervised_tokens_per_s": 100.0},
    "artifacts": {"recipe.yaml": "ab" * 32},
}


def _write(tmp_path, raw) -> object:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(raw))
    return path


@pytest.mark.parametrize("task, head", [("sft", "causal"), ("completion", "causal"),
                                        ("classification", "classification")])
def test_a_version_1_manifest_is_upgraded_on_read(tmp_path, task, head):
    manifest = read_manifest(_write(tmp_path, {**V1, "task": task}))
    assert manifest.schema_version == SCHEMA_VERSION == 2 and manifest.head == head
    assert manifest.result.validation == {"loss": 2.0} and manifest.method_name == "lora"
    assert manifest.parameters.trainable_share == 0.1 and manifest.data.rows["train"] == 8


def test_a_manifest_round_trips_through_its_file(tmp_path):
    manifest = read_manifest(_write(tmp_path, V1))
    again = read_manifest(_write(tmp_path, json.loads(manifest.to_json())))
    assert again == manifest and json.loads(manifest.to_json())["schema_version"] == SCHEMA_VERSION


def test_a_newer_schema_is_refused_with_what_to_do(tmp_path):
    with pytest.raises(NichetuneError, match="newer than this nichetune knows") as err:
        read_manifest(_write(tmp_path, {**V1, "schema_version": SCHEMA_VERSION + 1, "head": "causal"}))
    assert "upgrade nichetune" in err.value.hint


@pytest.mark.parametrize("raw, match", [
    ("{not json", "not a JSON manifest"),
    (json.dumps({"kind": "something-else"}), "not a nichetune run manifest"),
    (json.dumps({**V1, "parameters": {"trainable": "many", "total": 1, "trainable_share": 0.1}}),
     "field 'parameters.trainable'"),
])
def test_a_damaged_manifest_names_the_file_and_field(tmp_path, raw, match):
    path = tmp_path / "manifest.json"
    path.write_text(raw)
    with pytest.raises(NichetuneError, match=match) as err:
        read_manifest(path)
    assert str(path) in str(err.value)


def test_paths_spell_the_layout_once(tmp_path):
    paths = RunPaths(tmp_path)
    assert paths.manifest == tmp_path / "manifest.json" and paths.recipe == tmp_path / "recipe.yaml"
    assert paths.split("test") == tmp_path / "data" / "test.jsonl"
    assert paths.weights(True).name == "model" and paths.weights(False).name == "adapter"
    assert paths.eval_metrics == tmp_path / "eval" / "metrics.json" and paths.comparison("x").name == "compare-x.json"
    top = {p.relative_to(tmp_path).parts[0] for p in (paths.recipe, paths.manifest, paths.metrics, paths.data,
                                                        paths.checkpoints, paths.weights(True), paths.weights(False),
                                                        paths.eval, paths.report)}
    assert top <= set(RUN_ENTRIES)  # --fresh removes exactly what a run writes
    assert not paths.finished
    paths.manifest.write_text("{}")
    assert paths.finished


def test_run_manifest_is_what_train_returns(tmp_path, tiny_bert_dir):
    from nichetune.config.recipe import load_recipe
    from nichetune.run import load_run
    from nichetune.train.run import train
    from tiny_data import review_rows, write_jsonl

    data = write_jsonl(tmp_path / "cls.jsonl", review_rows(60, seed=0, own=4, noise=2))
    manifest = train(load_recipe(data={
        "task": "classification", "output_dir": str(tmp_path / "run"), "model": {"name": str(tiny_bert_dir)},
        "data": {"train": str(data)}, "method": {"name": "full"},
        "train": {"max_steps": 1, "batch_size": 8, "precision": "fp32"}}))
    assert isinstance(manifest, RunManifest) and manifest.head == "classification"
    assert read_manifest(RunPaths(tmp_path / "run").manifest) == manifest
    run = load_run(tmp_path / "run")
    assert run.manifest == manifest and run.paths.root == tmp_path / "run" and run.recipe.task == "classification"
    assert not run.model.training


def test_single_request_timing_warms_up_then_times_each_request_alone():
    from nichetune.timing import percentiles, single_requests

    calls = []
    seconds = single_requests(calls.append, ["a", "b"], 5, warmup=2)
    assert calls == [["a"], ["b"], ["a"], ["b"], ["a"], ["b"], ["a"]]  # 2 warm-ups, then 5 cycling
    assert len(seconds) == 5 and all(s >= 0 for s in seconds)
    summary = percentiles([0.001, 0.002, 0.003, 0.004])
    assert summary["p50_ms"] == pytest.approx(2.5) and summary["mean_ms"] == pytest.approx(2.5)
    assert summary["requests"] == 4 and summary["p99_ms"] == pytest.approx(3.97)

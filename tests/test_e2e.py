"""End-to-end runs with the real embedded models (slow; still run in CI)."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def nichetune(*args, cwd=None, timeout=600):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "nichetune", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


def test_prepare_then_generate_a_coherent_answer():
    res = nichetune("models", "prepare", "smollm2-135m-instruct")
    assert res.returncode == 0, res.stderr
    folder = res.stdout.strip().splitlines()[-1]
    config = json.load(open(os.path.join(folder, "config.json")))
    assert "quantization_config" not in config and config["architectures"] == ["LlamaForCausalLM"]
    manifest = json.load(open(os.path.join(folder, "nichetune-manifest.json")))
    assert manifest["probe_max_logit_diff"] < 1e-4 and "model.safetensors" in manifest["files"]

    res = nichetune("generate", "smollm2-135m-instruct", "What is a compiler?", "--max-new-tokens", "60")
    assert res.returncode == 0, res.stderr
    answer = res.stdout.lower()
    assert len(answer.split()) >= 20
    assert "compiler" in answer
    assert sum(w in answer for w in ("program", "code", "language", "machine", "translat")) >= 2


def test_prepared_copy_is_reused_and_verified():
    from nichetune.hashing import verify_manifest
    from nichetune.models.prepare import prepare_model

    path = prepare_model("smollm2-135m-instruct")
    assert verify_manifest(path) == []


def test_zero_shot_classification_with_the_real_models():
    texts = ["The striker scored twice and the team won the cup final.",
             "Shares fell sharply after the bank reported a quarterly loss."]
    for model in ("minilm-l6", "smollm2-135m-instruct"):
        res = nichetune("classify", model, *texts, "--labels", "sport,business", "--json")
        assert res.returncode == 0, res.stderr
        assert [p["label"] for p in json.loads(res.stdout)] == ["sport", "business"], model


def test_demo_quick(tmp_path):
    res = nichetune("demo", "--quick", "--out-dir", str(tmp_path / "out"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    summary = json.loads((tmp_path / "out" / "demo-summary.json").read_text())
    assert summary["failures"] == []
    assert summary["summary"]["drug-reviews"] == {"rows": 979, "valid": 979, "quarantined": 0}
    assert "done prepare model smollm2-135m-instruct" in res.stderr
    zero_shot = summary["summary"]["zero_shot"]
    assert zero_shot["n"] == 40 and 0 <= zero_shot["zero_shot_accuracy"] <= 1
    from nichetune.data.catalog import load_dataset

    first_40 = [r for r in load_dataset("drug-reviews") if r["original_split"] == "test"][:40]
    assert zero_shot["majority_accuracy"] == pytest.approx(sum(r["label"] == "positive" for r in first_40) / 40)


def test_shipped_bbc_news_recipe_trains_from_the_cli(tmp_path):
    # the shipped recipe, shortened: a third of the rows, 64 tokens, one epoch
    res = nichetune("train", "configs/bbc-news-lora.yaml", f"output_dir={tmp_path / 'bbc'}", "data.limit=600",
                    "model.max_length=64", "train.epochs=1", "train.early_stopping=null", "--json",
                    cwd=os.path.dirname(os.path.dirname(__file__)))
    assert res.returncode == 0, res.stderr[-3000:]
    manifest = json.loads(res.stdout)
    assert manifest["data"]["rows"]["test"] == 223 and manifest["method"]["name"] == "lora"
    assert manifest["parameters"]["trainable_share"] < 0.02
    assert manifest["result"]["test"]["accuracy"] >= 0.8  # 5 topics: the majority class scores 0.23


def test_shipped_foldoc_recipe_beats_the_base_model_on_validation_loss(tmp_path):
    res = nichetune("train", "configs/foldoc-sft-lora.yaml", f"output_dir={tmp_path / 'foldoc'}", "data.limit=80",
                    "data.eval_limit=40", "train.epochs=1", "--json", cwd=os.path.dirname(os.path.dirname(__file__)))
    assert res.returncode == 0, res.stderr[-3000:]
    result = json.loads(res.stdout)["result"]
    assert result["validation"]["loss"] < result["validation_before"]["loss"] - 0.3
    # no term crosses splits
    terms = {name: {json.loads(line)["group"] for line in open(tmp_path / "foldoc" / "data" / f"{name}.jsonl")}
             for name in ("train", "validation", "test")}
    assert not terms["train"] & terms["validation"] and not terms["train"] & terms["test"]

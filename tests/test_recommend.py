"""`nichetune recommend`: one test per rule of the decision table, and whole recommendations for three datasets."""

from __future__ import annotations

import dataclasses
import random

import pytest
import yaml

from nichetune.cli import main
from nichetune.config.recipe import load_recipe
from nichetune.recommend import recommend
from nichetune.recommend.evidence import Constraints, Evidence
from nichetune.recommend.rules import RULES, decide
from tiny_data import NEG, POS, write_jsonl

MID = Evidence(source="x.jsonl", task="classification", rows=1000, train_rows=800, classes=2, min_class=400,
               imbalance_ratio=1.0, p95_tokens=100, model="m", model_layers=6, labels={"a": 500, "b": 500})

# rule name -> (evidence changes, constraint changes, settings it must decide); and a case where it must not fire
CASES = {
    "base model": ({}, {}, {"model.name": "m", "model.max_length": 128}, None),
    "tiny data: train the head and the top block": (
        {"train_rows": 32, "min_class": 16}, {}, {"method.name": "freeze", "method.layers": 5}, ({}, {})),
    "tiny data: prompt tuning": (
        {"task": "sft", "train_rows": 40, "classes": 0, "min_class": 0}, {}, {"method.name": "prompt_tuning"},
        ({"task": "sft"}, {})),
    "default: LoRA": ({}, {}, {"method.name": "lora", "method.r": 8}, ({"train_rows": 40}, {})),
    "enough data and compute: full fine-tuning": (
        {"train_rows": 8000, "min_class": 2000}, {"compute": "gpu"}, {"method.name": "full", "train.lr": 5e-5},
        ({"train_rows": 8000, "min_class": 2000}, {})),  # the same data on a CPU stays with LoRA
    "epochs by data size, early stopping": ({}, {}, {"train.epochs": 10, "train.early_stopping.patience": 3}, None),
    "small data: regularise": ({}, {}, {"train.label_smoothing": 0.1}, ({"train_rows": 4000}, {})),
    "imbalanced classes: class weights, macro-F1": (
        {"imbalance_ratio": 7.0}, {}, {"train.class_weights": True, "eval.metric": "macro_f1"}, ({}, {})),
    "grouped rows: group-aware split": ({"group_field": "drug"}, {}, {"data.split.group_field": "drug"}, ({}, {})),
    "small data: a test split big enough to be evidence": (  # 1,000 rows: 25% holds 250 test rows
        {}, {}, {"data.split.ratios": [0.65, 0.1, 0.25]}, ({"rows": 5000}, {})),
    "duplicates: deduplicate first": ({"redundant_share": 0.05}, {}, {}, ({"redundant_share": 0.001}, {})),
    "sensitive data with PII: mask before training": (
        {"pii_rows": 3, "pii_types": ("EMAIL",)}, {"sensitivity": "internal"}, {"data.pii": "mask"},
        ({"pii_rows": 3}, {})),
    "regulated data: stay local": ({}, {"sensitivity": "regulated"}, {"train.tracking": []}, ({}, {})),
    "high consequence: calibrate, conformal sets, human review": (
        {}, {"consequence": "high"}, {"eval.alpha": 0.05, "eval.review": 100}, ({}, {})),
    "knowledge changes often: retrieval, small adapters": (
        {"train_rows": 8000}, {"knowledge": "often"}, {"deploy.retrieval": True, "method.r": 8}, ({}, {})),
    "index plan: the documents to retrieve from": (
        {}, {"knowledge": "changing", "docs": ("kb/",), "sensitivity": "internal"},
        {"retrieval.docs": ["kb/"], "retrieval.index": "indexes/kb", "retrieval.pii": "mask"},
        ({}, {"knowledge": "changing"})),
    "index plan: name the documents": ({}, {"knowledge": "changing"}, {}, ({}, {"knowledge": "changing",
                                                                           "docs": ("kb.jsonl",)})),
    "tight latency: int8, merged, shorter inputs": (
        {"p95_tokens": 300}, {"latency_ms": 20}, {"deploy.quantize": "int8", "model.max_length": 128},
        ({}, {"latency_ms": 500})),
    "latency budget recorded": ({}, {"latency_ms": 500}, {"deploy.latency_budget_ms": 500}, ({}, {})),
    "edge deployment: merged int8": ({}, {"target": "edge"}, {"deploy.merge": True}, ({}, {})),
    "CPU training: bf16 where native": ({}, {}, {"train.precision": "auto"}, ({}, {"compute": "gpu"})),
    "GPU training: bf16, bigger batches": ({}, {"compute": "cluster"}, {"train.precision": "bf16"}, ({}, {})),
}


def _fired(evidence_changes: dict, constraint_changes: dict) -> tuple[dict, dict]:
    recipe, fired = decide(dataclasses.replace(MID, **evidence_changes), Constraints(**constraint_changes))
    return recipe, {d["rule"]: d for d in fired}


def test_every_rule_has_a_case():
    assert {r.name for r in RULES} == set(CASES)


@pytest.mark.parametrize("name", list(CASES))
def test_rule(name):
    evidence, constraints, expected, negative = CASES[name]
    _, fired = _fired(evidence, constraints)
    assert name in fired, f"{name} did not fire"
    assert fired[name]["because"]  # every decision says why
    for key, value in expected.items():
        assert fired[name]["settings"][key] == value, key
    if negative is not None:
        assert name not in _fired(*negative)[1], f"{name} fired where it should not"


def test_later_rules_refine_earlier_ones_and_the_result_validates():
    recipe, fired = _fired({"rows": 10000, "train_rows": 8000, "p95_tokens": 300},
                           {"knowledge": "often", "latency_ms": 20})
    assert recipe["method"]["r"] == 8 and fired["default: LoRA"]["settings"]["method.r"] == 16
    assert recipe["model"]["max_length"] == 128
    load_recipe(data={"task": "classification", "output_dir": "x", "data": {"train": "x.jsonl"}, **recipe})


def _reviews(n: int, seed: int, pii: bool = False, groups: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "positive" if i % 2 else "negative"
        words = rng.sample(POS if label == "positive" else NEG, 4) + rng.sample(POS + NEG, 3) + [f"w{i}"]
        text = " ".join(words) + (f" call me at jane.doe{i}@example.com" if pii and i % 5 == 0 else "")
        rows.append({"id": f"r{i}", "text": text, "label": label, **({"group": f"p{i % groups}"} if groups else {})})
    return rows


def test_three_situations_get_different_explained_recipes_that_validate(tmp_path, tiny_bert_dir, capsys):
    small = write_jsonl(tmp_path / "clinical.jsonl", _reviews(40, 0, pii=True, groups=10))
    large = write_jsonl(tmp_path / "tickets.jsonl", _reviews(5000, 1))
    changing = write_jsonl(tmp_path / "policies.jsonl", _reviews(600, 2))
    model = str(tiny_bert_dir)
    assert main(["recommend", "--data", str(small), "--model", model, "--sensitivity", "regulated",
                 "--consequence", "high", "--output-dir", str(tmp_path / "run"),
                 "--out", str(tmp_path / "a.yaml")]) == 0
    out = capsys.readouterr().out
    assert "because" in out and "tiny data: train the head and the top block" in out
    a = recommend(str(small), Constraints(sensitivity="regulated", consequence="high", model=model))
    b = recommend(str(large), Constraints(model=model))
    c = recommend(str(changing), Constraints(model=model, knowledge="often", latency_ms=30))
    methods = [(r["recipe"]["method"]["name"], r["recipe"]["method"].get("r")) for r in (a, b, c)]
    assert methods == [("freeze", None), ("lora", 16), ("lora", 8)]
    assert recommend(str(large), Constraints(model=model, compute="gpu"))["recipe"]["method"]["name"] == "full"
    assert a["recipe"]["data"]["pii"] == "mask" and a["recipe"]["eval"]["review"] == 100
    assert a["recipe"]["data"]["split"]["group_field"] == "group"
    assert b["recipe"]["data"]["pii"] == "keep" and not b["recipe"]["deploy"]["retrieval"]
    assert b["recipe"]["train"]["epochs"] == 5 and a["recipe"]["train"]["epochs"] == 20
    assert c["recipe"]["deploy"]["retrieval"] and c["recipe"]["deploy"]["quantize"] == "int8"
    written = (tmp_path / "a.yaml").read_text()
    assert "# Run with: nichetune train a.yaml" in written and "pii: mask" in written
    assert "# sensitive data with PII: mask before training" in written
    assert load_recipe(tmp_path / "a.yaml").method.name == "freeze"
    assert yaml.safe_load(written)["eval"]["alpha"] == 0.05
    # ready as is: `nichetune train` runs the written recipe, PII masked in the splits it keeps
    assert main(["train", str(tmp_path / "a.yaml"), "train.epochs=2", "train.precision=fp32"]) == 0
    kept = (tmp_path / "run" / "data" / "train.jsonl").read_text()
    assert "@example.com" not in kept and "[EMAIL]" in kept

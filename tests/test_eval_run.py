"""`nichetune eval` / `report` on a tiny classification run: numbers against scikit-learn, the page in a browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from sklearn.metrics import accuracy_score, f1_score

from nichetune.cli import main
from nichetune.config.recipe import load_recipe
from nichetune.train.run import train
from tiny_data import chat_rows, review_rows, write_jsonl


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, tiny_bert_dir) -> Path:
    root = tmp_path_factory.mktemp("eval-run")
    # noisy words so the model is not perfect and calibration has something to measure
    write_jsonl(root / "d.jsonl", review_rows(240, seed=1, own=2, noise=4,
                                              choices={"condition": ["pain", "pain", "migraine", "rare"]}))
    recipe = load_recipe(data={
        "task": "classification", "output_dir": str(root / "run"), "model": {"name": str(tiny_bert_dir)},
        "data": {"train": str(root / "d.jsonl"), "split": {"ratios": [0.5, 0.25, 0.25]}},
        "method": {"name": "full"}, "train": {"epochs": 3, "batch_size": 8, "lr": 3e-3, "precision": "fp32"}})
    train(recipe)
    assert main(["eval", str(root / "run"), "--min-slice-count", "10"]) == 0
    return root / "run"


def test_eval_metrics_match_scikit_learn_on_the_written_predictions(evaluated):
    metrics = json.loads((evaluated / "eval" / "metrics.json").read_text())
    preds = [json.loads(line) for line in open(evaluated / "eval" / "predictions.jsonl")]
    y, p = [r["label"] for r in preds], [r["predicted"] for r in preds]
    assert metrics["n"] == len(preds) == 60
    assert metrics["metrics"]["accuracy"] == pytest.approx(accuracy_score(y, p))
    assert metrics["metrics"]["macro_f1"] == pytest.approx(f1_score(y, p, average="macro"))
    names = [c["baseline"] for c in metrics["comparisons"]]
    assert names == ["majority class", "TF-IDF + logistic regression", "zero-shot base model"]
    train_labels = [json.loads(line)["label"] for line in open(evaluated / "data" / "train.jsonl")]
    majority = Counter(train_labels).most_common(1)[0][0]  # ties: the first seen, every run
    assert metrics["comparisons"][0]["baseline_accuracy"] == pytest.approx(sum(v == majority for v in y) / len(y))
    for method in ("lac", "aps"):
        c = metrics["conformal"][method]
        assert 0 <= c["coverage"] <= 1 and 0 < c["mean_set_size"] <= 2  # LAC may return empty sets
    cond = metrics["slices"]["condition"]
    assert sum(r["count"] for r in cond["slices"]) == 60 and "length" in metrics["slices"]
    test_rows = [json.loads(line) for line in open(evaluated / "data" / "test.jsonl")]
    pain = [i for i, r in enumerate(test_rows) if r["condition"] == "pain"]
    row = next(r for r in cond["slices"] if r["slice"] == "pain")
    assert row["accuracy"] == pytest.approx(accuracy_score([y[i] for i in pain], [p[i] for i in pain]))
    assert metrics["calibration"]["temperature"] > 0


def test_report_rerenders_identically(evaluated):
    before = (evaluated / "report.html").read_text()
    assert main(["report", str(evaluated)]) == 0
    assert (evaluated / "report.html").read_text() == before


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium is not installed")
def test_report_opens_offline_in_a_real_browser_with_every_image(evaluated, tmp_path):
    res = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                          "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
                          "--virtual-time-budget=5000", "--dump-dom", f"file://{evaluated / 'report.html'}"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    dom = res.stdout
    images = int(re.search(r'data-images="(\d+)"', dom).group(1))
    assert images >= 5 and re.search(r'data-images-ok="(\d+)"', dom).group(1) == str(images)
    metrics = json.loads((evaluated / "eval" / "metrics.json").read_text())["metrics"]
    shown = re.search(r'id="headline-accuracy">([0-9.]+)<', dom).group(1)
    assert float(shown) == pytest.approx(metrics["accuracy"], abs=5e-5)
    assert float(re.search(r'id="headline-macro-f1">([0-9.]+)<', dom).group(1)) == pytest.approx(
        metrics["macro_f1"], abs=5e-5)
    assert "http://" not in dom.replace("http://www.w3.org", "") and "https://" not in dom  # nothing remote


def test_sft_eval_compares_with_the_base_model_on_identical_prompts(tmp_path, tiny_llama_dir):
    write_jsonl(tmp_path / "sft.jsonl", chat_rows(48))
    recipe = load_recipe(data={
        "task": "sft", "output_dir": str(tmp_path / "run"), "model": {"name": str(tiny_llama_dir), "max_length": 64},
        "data": {"train": str(tmp_path / "sft.jsonl"), "split": {"group_field": None}},
        "method": {"name": "lora", "r": 4, "dropout": 0.0},
        "train": {"epochs": 12, "batch_size": 4, "lr": 2e-2, "precision": "fp32"}})
    train(recipe)
    assert main(["eval", str(tmp_path / "run"), "--samples", "4"]) == 0
    metrics = json.loads((tmp_path / "run" / "eval" / "metrics.json").read_text())
    ppl = metrics["perplexity"]
    # a random tiny Llama with rank-4 LoRA learns the argmax long before it grows confident
    assert ppl["tuned"]["perplexity"] < ppl["base"]["perplexity"] - 5
    assert ppl["tuned"]["token_accuracy"] == 1.0 > ppl["base"]["token_accuracy"]
    assert ppl["tuned"]["tokens"] == ppl["base"]["tokens"] > 0  # identical supervised tokens
    answers_m = metrics["answers"]
    assert answers_m["tuned"]["exact_match"] == 1.0 and answers_m["base"]["exact_match"] == 0.0
    assert answers_m["tuned"]["term_recall"] == 1.0
    assert len(metrics["side_by_side"]) == 4 and "forgetting" in metrics
    html = (tmp_path / "run" / "report.html").read_text()
    assert f'id="headline-perplexity">{ppl["tuned"]["perplexity"]:.3f}<' in html

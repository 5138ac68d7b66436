"""`nichetune eval` / `report` on a tiny classification run: numbers against scikit-learn, the page in a browser."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest
from sklearn.metrics import accuracy_score, f1_score

from nichetune.cli import main
from nichetune.config.recipe import load_recipe
from nichetune.infer.classify import classify, sentence_vectors
from nichetune.infer.label_wording import choice_rows, choose_wording
from nichetune.models.loading import load_encoder
from nichetune.train.run import train
from tiny_data import chat_rows, review_rows, write_jsonl


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory, tiny_bert_dir, tiny_llama_dir) -> Path:
    root = tmp_path_factory.mktemp("eval-run")
    # noisy words so the model is not perfect and calibration has something to measure
    write_jsonl(root / "d.jsonl", review_rows(240, seed=1, own=2, noise=4,
                                              choices={"condition": ["pain", "pain", "migraine", "rare"]}))
    recipe = load_recipe(data={
        "task": "classification", "output_dir": str(root / "run"), "model": {"name": str(tiny_bert_dir)},
        "data": {"train": str(root / "d.jsonl"), "split": {"ratios": [0.5, 0.25, 0.25]}},
        "method": {"name": "lora", "r": 4, "target_modules": ["query", "value", "dense"]},
        "train": {"epochs": 4, "batch_size": 8, "lr": 2e-2, "precision": "fp32"}})
    train(recipe)
    with pytest.MonkeyPatch.context() as mp:  # the int8 row is measured whatever this CPU's instructions
        mp.setattr("nichetune.hardware.cpu_has_int8_dot", lambda: True)
        assert main(["eval", str(root / "run"), "--min-slice-count", "10", "--prompt-model", str(tiny_llama_dir),
                     "--latency-requests", "5"]) == 0
    return root / "run"


def _embedder(model_dir):
    model, tokenizer = load_encoder(model_dir)
    return lambda texts: sentence_vectors(model, tokenizer, texts)[0]


def test_eval_metrics_match_scikit_learn_on_the_written_predictions(evaluated, tiny_bert_dir):
    metrics = json.loads((evaluated / "eval" / "metrics.json").read_text())
    preds = [json.loads(line) for line in open(evaluated / "eval" / "predictions.jsonl")]
    y, p = [r["label"] for r in preds], [r["predicted"] for r in preds]
    assert metrics["n"] == len(preds) == 60
    assert metrics["metrics"]["accuracy"] == pytest.approx(accuracy_score(y, p))
    assert metrics["metrics"]["macro_f1"] == pytest.approx(f1_score(y, p, average="macro"))
    names = [c["baseline"] for c in metrics["comparisons"]]
    prompt_model = names[-1].removeprefix("2-shot ")
    assert names == ["majority class", names[1], names[2], f"zero-shot {prompt_model}", f"2-shot {prompt_model}"]
    # the base encoder's labels are worded by the template that fits the training rows best, and the baseline's
    # predictions are classify's with that wording
    template = re.fullmatch(r"zero-shot base model \(labels worded as '(.*)', chosen on (\d+) training rows\)",
                            names[2]).group(1)
    train_rows = [json.loads(line) for line in open(evaluated / "data" / "train.jsonl")]
    wording = choose_wording(_embedder(tiny_bert_dir), choice_rows(train_rows), ["negative", "positive"])
    assert template == wording.template and names[2].endswith(f"chosen on {min(len(train_rows), 128)} training rows)")
    zero = classify(str(tiny_bert_dir), [r["text"] for r in preds], labels=wording.of(["negative", "positive"]))
    assert metrics["comparisons"][2]["baseline_accuracy"] == pytest.approx(
        accuracy_score(y, [p.label for p in zero]))
    # the lexical baseline is the stronger of TF-IDF + logistic regression and + a linear SVM on validation
    assert names[1] in ("TF-IDF + logistic regression (the stronger of two on validation)",
                        "TF-IDF + linear SVM (the stronger of two on validation)")
    lexical = lexical_model(evaluated)
    assert lexical.validation[lexical.kind] == max(lexical.validation.values())
    assert metrics["comparisons"][1]["baseline_accuracy"] == pytest.approx(
        accuracy_score(y, [["negative", "positive"][i] for i in lexical.predict([r["text"] for r in preds])]))
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


def lexical_model(run: Path):
    """The lexical baseline refitted by hand: both candidates on the run's train split, the better on validation."""
    import numpy as np

    from nichetune.tasks.lexical import fit_lexical

    def split(name):
        rows = [json.loads(line) for line in open(run / "data" / f"{name}.jsonl")]
        return [r["text"] for r in rows], np.array([["negative", "positive"].index(r["label"]) for r in rows])

    (tr, y_tr), (va, y_va) = split("train"), split("validation")
    return fit_lexical(tr, y_tr, 2, val_texts=va, val_y=y_va)


def test_few_shot_baseline_prompts_the_instruct_model_with_one_training_example_per_label(evaluated):
    from nichetune.eval.classify_run import pick_shots
    from nichetune.infer.classify import classify

    metrics = json.loads((evaluated / "eval" / "metrics.json").read_text())
    train_rows = [json.loads(line) for line in open(evaluated / "data" / "train.jsonl")]
    test_rows = [json.loads(line) for line in open(evaluated / "data" / "test.jsonl")]
    shots = pick_shots(train_rows, ["negative", "positive"], 1, seed=0)
    assert [label for _, label in shots] == ["negative", "positive"]
    assert all(any(r["text"] == text and r["label"] == label for r in train_rows) for text, label in shots)
    few = metrics["comparisons"][-1]
    preds = classify(few["baseline"].removeprefix("2-shot "), [r["text"] for r in test_rows],
                     labels=["negative", "positive"], shots=shots, dtype="auto")
    assert preds[0].method == "label likelihood, 2-shot, calibrated"
    expected = sum(p.label == r["label"] for p, r in zip(preds, test_rows, strict=True)) / len(test_rows)
    assert few["baseline_accuracy"] == pytest.approx(expected)


def test_pick_shots_prefers_short_examples_and_interleaves_labels():
    from nichetune.eval.classify_run import SHOT_WORDS, pick_shots

    rows = [{"text": "w " * 200, "label": "a"}] + [{"text": f"a{i}", "label": "a"} for i in range(5)] + [
        {"text": f"b{i}", "label": "b"} for i in range(5)]
    shots = pick_shots(rows, ["a", "b"], 2, seed=3)
    assert [label for _, label in shots] == ["a", "b", "a", "b"]
    assert all(len(t.split()) <= SHOT_WORDS for t, _ in shots) and shots == pick_shots(rows, ["a", "b"], 2, seed=3)
    assert len({t for t, _ in shots}) == 4


def test_latency_covers_every_serving_variant_with_consistent_quality_and_sizes(evaluated):
    metrics = json.loads((evaluated / "eval" / "metrics.json").read_text())
    by = {r["variant"]: r for r in metrics["latency"]}
    assert list(by) == ["base", "tuned", "merged", "bf16", "int8", "onnx", "onnx-int8"]
    assert not [r for r in by.values() if "error" in r]
    for r in by.values():
        assert 0 < r["p50_ms"] <= r["p95_ms"] <= r["p99_ms"] and r["requests"] == 5 and r["throughput"] > 0
        assert r["peak_rss_mb"] > r["memory_mb"] >= 0
    # merging changes nothing the classifier decides; the accuracy is the run's own on the same rows
    assert by["merged"]["quality"]["accuracy"] == by["tuned"]["quality"]["accuracy"] == pytest.approx(
        metrics["metrics"]["accuracy"])
    assert by["bf16"]["disk_mb"] < 0.6 * by["merged"]["disk_mb"]
    # the ONNX export in onnxruntime decides as the merged model does; its int8 form is smaller
    assert by["onnx"]["quality"]["accuracy"] == by["merged"]["quality"]["accuracy"]
    assert by["onnx-int8"]["disk_mb"] < by["onnx"]["disk_mb"]  # the tiny model is mostly embeddings
    assert by["tuned"]["disk_mb"] > by["base"]["disk_mb"] and by["base"]["quality"] is None


def test_int8_is_not_timed_on_a_cpu_without_int8_dot_products_and_the_report_says_why(evaluated, monkeypatch):
    from nichetune.eval.latency import measure_variants, measured
    from nichetune.eval.report import latency_section

    monkeypatch.setattr("nichetune.hardware.cpu_has_int8_dot", lambda: False)
    monkeypatch.setattr("nichetune.hardware.pick_device", lambda requested="auto": "cpu")
    rows = [{"text": "good", "label": "positive"}]
    got = measure_variants(evaluated, rows, requests=1, variants=("int8",))
    assert got == [{"variant": "int8", "skipped": got[0]["skipped"]}] and "VNNI" in got[0]["skipped"]
    assert measured(got) == [] and "int8: not measured: this CPU has no int8" in latency_section(got)
    assert "onnx-int8" in got[0]["skipped"]  # it names the int8 form that is fast here


def test_compare_with_base_and_with_itself(evaluated, capsys):
    metrics = json.loads((evaluated / "eval" / "metrics.json").read_text())
    assert main(["compare", str(evaluated), "base"]) == 0
    out = json.loads((evaluated / "eval" / "compare-base-model.json").read_text())
    zero = next(c for c in metrics["comparisons"] if c["id"] == "zero-shot-base")  # worded the same way
    assert out["metrics"]["accuracy"]["delta"] == pytest.approx(zero["bootstrap"]["delta"])
    assert out["mcnemar"]["p_value"] == pytest.approx(zero["mcnemar"]["p_value"])
    assert out["n"] == metrics["n"] and out["sentence"] in capsys.readouterr().out
    assert main(["compare", str(evaluated), str(evaluated), "--json"]) == 0
    same = json.loads(capsys.readouterr().out)
    assert same["agreement"] == 1.0 and same["metrics"]["accuracy"]["delta"] == 0.0
    assert same["verdict"] == "not significantly different" and same["examples"] == []
    html = (evaluated / "report.html").read_text()
    assert out["sentence"].replace("'", "&#x27;") in html  # the report shows every comparison made


def test_review_round_trip_gives_expert_accuracy_and_agreement(evaluated, tmp_path):
    import csv

    from sklearn.metrics import cohen_kappa_score

    assert main(["review", "export", str(evaluated), "--n", "30", "--out", str(tmp_path / "r.csv")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "r.csv")))
    assert len(rows) == 30 and len({r["id"] for r in rows}) == 30
    assert {r["confidence_band"] for r in rows} == {"low", "mid", "high"}
    assert {r["slice"] for r in rows} == {"pain", "migraine", "rare"}  # every condition, even the thin one
    assert all(r["grade_1"] == r["grade_2"] == "" for r in rows)
    g1 = [1 if i % 3 else 0 for i in range(30)]
    g2 = [1 if i % 4 else 0 for i in range(30)]
    for r, a, b in zip(rows, g1, g2, strict=True):
        r["grade_1"], r["grade_2"] = ("yes" if a else "no"), str(b)
    rows[-1]["grade_2"] = ""  # one item graded by one expert only
    with open(tmp_path / "graded.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    assert main(["review", "import", str(tmp_path / "graded.csv")]) == 0
    review = json.loads((evaluated / "eval" / "review.json").read_text())
    assert review["graders"]["grade_1"]["accuracy"] == pytest.approx(sum(g1) / 30)
    assert review["graders"]["grade_2"]["graded"] == 29
    assert review["graders"]["grade_2"]["accuracy"] == pytest.approx(sum(g2[:29]) / 29)
    assert review["agreement"]["cohen_kappa"] == pytest.approx(cohen_kappa_score(g1[:29], g2[:29]), abs=1e-4)
    assert "Expert review" in (evaluated / "report.html").read_text()

    rows[3]["grade_1"] = "maybe"
    with open(tmp_path / "bad.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    from nichetune.errors import DataValidationError
    from nichetune.eval.review import import_review

    with pytest.raises(DataValidationError, match=r"bad.csv, line 5, field grade_1"):
        import_review(tmp_path / "bad.csv")


def test_allocation_is_proportional_and_keeps_every_stratum():
    from nichetune.eval.review import allocate, wilson

    assert allocate({"a": 50, "b": 30, "c": 2}, 10) == {"a": 6, "b": 3, "c": 1}
    assert allocate({"a": 5, "b": 5}, 100) == {"a": 5, "b": 5}
    assert sum(allocate({i: 1 for i in range(7)}, 3).values()) == 3
    lo, hi = wilson(8, 10)  # textbook value: 0.490 to 0.943
    assert (round(lo, 3), round(hi, 3)) == (0.490, 0.943)


def test_report_shows_the_audit_of_the_run_splits(evaluated):
    metrics = json.loads((evaluated / "eval" / "metrics.json").read_text())
    train_rows = (evaluated / "data" / "train.jsonl").read_text().splitlines()
    audit = metrics["audit"]
    assert audit["train_rows"] == len(train_rows)
    assert audit["splits"]["test.jsonl"]["rows"] == metrics["n"]
    # the tiny reviews reuse a 16-word vocabulary, so exact duplicates across splits are certain
    test_texts = {json.loads(line)["text"] for line in open(evaluated / "data" / "test.jsonl")}
    exact = sum(json.loads(line)["text"] in test_texts for line in train_rows)
    assert (audit["leakage"]["test.jsonl"]["exact"] > 0) == (exact > 0)
    assert "Data audit" in (evaluated / "report.html").read_text()


def test_report_lists_the_most_confident_errors_of_the_worst_slice(evaluated):
    from nichetune.eval.evaluators import ReportContext
    from nichetune.eval.evaluators.errors import worst_slice_errors

    metrics = json.loads((evaluated / "eval" / "metrics.json").read_text())
    preds = [json.loads(line) for line in open(evaluated / "eval" / "predictions.jsonl")]
    ((field, worst, rows),) = worst_slice_errors(ReportContext(evaluated, metrics, None))
    assert field == "condition" and worst == metrics["slices"]["condition"]["worst"]
    wrong = sorted((p for p in preds if p["slices"]["condition"] == worst and p["predicted"] != p["label"]),
                   key=lambda p: -p["confidence"])
    assert [r["id"] for r in rows] == [p["id"] for p in wrong[:5]] and rows
    assert f"Errors in the worst condition slice: {worst}" in (evaluated / "report.html").read_text()


def test_report_rerenders_identically(evaluated):
    before = (evaluated / "report.html").read_text()
    assert main(["report", str(evaluated)]) == 0
    assert (evaluated / "report.html").read_text() == before


def test_report_opens_offline_in_a_real_browser_with_every_image(evaluated, chromium):
    dom = chromium(evaluated / "report.html", "--virtual-time-budget=5000")
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
    assert main(["eval", str(tmp_path / "run"), "--samples", "4", "--latency-requests", "3"]) == 0
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
    by = {r["variant"]: r for r in metrics["latency"]}
    assert list(by) == ["base", "tuned", "merged", "bf16", "int8", "gguf"]  # ONNX is for encoder classifiers
    assert by["tuned"]["throughput_unit"] == "generated tokens/s" and by["tuned"]["new_tokens"] == 32
    assert by["merged"]["quality"]["perplexity"] == pytest.approx(by["tuned"]["quality"]["perplexity"], rel=1e-4)
    assert by["base"]["quality"]["perplexity"] > by["tuned"]["quality"]["perplexity"]

    assert main(["compare", str(tmp_path / "run"), "base", "--samples", "4"]) == 0
    out = json.loads((tmp_path / "run" / "eval" / "compare-base-model.json").read_text())
    assert out["metrics"]["response perplexity"]["a"] == pytest.approx(ppl["tuned"]["perplexity"])
    assert out["metrics"]["response perplexity"]["b"] == pytest.approx(ppl["base"]["perplexity"])
    forgetting = metrics["forgetting"]["base"]["perplexity"]
    assert out["metrics"]["general-domain perplexity"]["b"] == pytest.approx(forgetting)
    assert out["verdict"] == "better" and len(out["examples"]) == 4  # ROUGE-L 1.0 vs 0 on every prompt

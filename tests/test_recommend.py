"""`nichetune recommend`: one test per rule of the decision table, and whole recommendations for three datasets."""

from __future__ import annotations

import dataclasses
import random
import re

import numpy as np
import pytest
import yaml

from nichetune.cli import main
from nichetune.config.recipe import load_recipe
from nichetune.infer.classify import classify, sentence_vectors
from nichetune.infer.label_wording import choose_wording
from nichetune.models.loading import load_encoder
from nichetune.recommend import recommend
from nichetune.recommend.evidence import Constraints, Evidence
from nichetune.recommend.rules import RULES, decide
from tiny_data import NEG, POS, write_jsonl

MID = Evidence(source="x.jsonl", task="classification", rows=1000, train_rows=800, classes=2, min_class=400,
               imbalance_ratio=1.0, p95_tokens=100, model="m", model_layers=6, labels={"a": 500, "b": 500})

# the base model's zero-shot on 16 validation rows, and a head on its untrained embeddings of the training rows
WORDS_KNOW = {"template": "It was {}.", "chosen_on": 16, "accuracy": 0.7, "macro_f1": 0.69,
              "scored_on": "16 validation rows",
              "cross_validated": {"rows": 32, "folds": 4, "zero_shot_macro_f1": 0.69, "head_macro_f1": 0.6}}

# rule name -> (evidence changes, constraint changes, settings it must decide); and a case where it must not fire
CASES = {
    "base model": ({}, {}, {"model.name": "m", "model.max_length": 128}, None),
    "few examples per label: contrastive pairs, then every weight": (  # 8 rows a label
        {"train_rows": 16, "min_class": 8, "labels": {"negative": 8, "positive": 8}}, {},
        {"method.name": "full", "train.contrastive": 20, "train.label_anchors": True,
         "train.head_init": "logistic"},
        ({"train_rows": 16, "min_class": 8, "encoder": False}, {})),  # a causal LM gets no pairs
    "few examples, label words that know more: the pretrained encoder, a fitted head, the zero-shot prior": (
        {"train_rows": 16, "min_class": 8, "labels": {"negative": 8, "positive": 8}, "zero_shot": WORDS_KNOW},
        {}, {"method.name": "freeze", "method.layers": 6, "train.epochs": 0, "train.head_init": "logistic",
             "train.zero_shot_prior": True},
        ({"train_rows": 16, "min_class": 8, "labels": {"negative": 8, "positive": 8},
          "zero_shot": WORDS_KNOW | {"cross_validated": WORDS_KNOW["cross_validated"] | {"head_macro_f1": 0.75}}},
         {})),  # the rows teach a head more: pairs instead
    "tiny data: train the head and the top block": (
        {"train_rows": 80, "min_class": 4, "classes": 2}, {}, {"method.name": "freeze", "method.layers": 5},
        ({}, {})),
    "tiny data: prompt tuning": (
        {"task": "sft", "train_rows": 40, "classes": 0, "min_class": 0}, {}, {"method.name": "prompt_tuning"},
        ({"task": "sft"}, {})),
    "default: LoRA": ({}, {}, {"method.name": "lora", "method.r": 8}, ({"train_rows": 40}, {})),
    "enough data and compute: full fine-tuning": (
        {"train_rows": 8000, "min_class": 2000}, {"compute": "gpu"}, {"method.name": "full", "train.lr": 5e-5},
        ({"train_rows": 8000, "min_class": 2000}, {})),  # the same data on a CPU stays with LoRA
    "long inputs: read the head and the tail": (  # lengths 0..2,000 tokens: 75% of rows pass the 512-token window
        {"length_quantiles": tuple(range(0, 2001, 100)), "p95_tokens": 1900}, {},
        {"model.truncation": "head_tail"}, ({"length_quantiles": tuple(range(0, 101, 5))}, {})),
    "few examples, long inputs: read them whole, in windows": (  # 8 news articles a label, 75% past 256 tokens
        {"train_rows": 16, "min_class": 8, "labels": {"negative": 8, "positive": 8},
         "length_quantiles": tuple(range(0, 2001, 100)), "p95_tokens": 1900}, {}, {"model.truncation": "windows"},
        ({"length_quantiles": tuple(range(0, 2001, 100)), "p95_tokens": 1900}, {})),  # 800 rows: head + tail
    "words carry the label: stack TF-IDF with the encoder": (
        {"lexical": {"best": "svm", "held_out": 200, "logreg": {"accuracy": 0.85, "macro_f1": 0.84},
                     "svm": {"accuracy": 0.9, "macro_f1": 0.88}}}, {}, {"train.lexical": "stack"}, ({}, {})),
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


def test_few_shot_labels_named_by_codes_get_no_anchors():
    few = "few examples per label: contrastive pairs, then every weight"
    _, fired = _fired({"train_rows": 16, "min_class": 8, "labels": {"LABEL_0": 8, "LABEL_1": 8}}, {})
    assert "train.label_anchors" not in fired[few]["settings"] and "read as codes" in fired[few]["because"]
    _, fired = _fired(CASES[few][0], {})
    assert "each label's name joining the pairs" in fired[few]["because"]


def test_few_shot_long_texts_are_read_in_windows_measured_against_the_pair_stage_window():
    # reviews whose longest 5% pass the window keep head + tail: windows only where texts are documents
    reviews = {"train_rows": 16, "min_class": 8, "labels": {"negative": 8, "positive": 8},
               "length_quantiles": tuple(range(0, 191, 10)) + (400,), "p95_tokens": 190}
    recipe, fired = _fired(reviews, {})
    assert recipe["model"]["truncation"] == "head_tail" and "few examples, long inputs: read them whole, in windows" \
        not in fired
    # lengths 0..400 tokens: 5% of rows pass the 384-token window of the base rule, 40% pass the pair stage's 256
    few = {"train_rows": 16, "min_class": 8, "labels": {"negative": 8, "positive": 8},
           "length_quantiles": tuple(range(0, 401, 20)), "p95_tokens": 380}
    recipe, fired = _fired(few, {})
    assert "long inputs: read the head and the tail" in fired and recipe["model"]["truncation"] == "windows"
    assert recipe["model"]["max_length"] == 256
    assert "40% of rows are longer than the 256-token window" in fired[
        "few examples, long inputs: read them whole, in windows"]["because"]


def test_where_the_label_words_know_more_nothing_trains_and_the_prior_path_says_both_figures():
    few = {"train_rows": 16, "min_class": 8, "labels": {"negative": 8, "positive": 8}, "zero_shot": WORDS_KNOW}
    recipe, fired = _fired(few, {})
    assert "few examples per label: contrastive pairs, then every weight" not in fired
    assert "epochs by data size, early stopping" not in fired
    assert recipe["train"]["epochs"] == 0 and "contrastive" not in recipe["train"]
    because = fired["few examples, label words that know more: the pretrained encoder, a fitted head, the zero-shot "
                    "prior"]["because"]
    assert "macro-F1 0.690" in because and "0.600" in because
    # without validation rows there is no head figure to compare: the pair stage, as before
    recipe, fired = _fired(few | {"zero_shot": {k: v for k, v in WORDS_KNOW.items() if k != "cross_validated"}}, {})
    assert recipe["train"]["contrastive"] == 20 and "zero_shot_prior" not in recipe["train"]


def test_a_long_tail_of_rare_labels_is_not_tiny_data():
    """FOLDOC's shape: 6,000 training rows over 122 labels, a few labels of one row. Once the smallest label alone
    made this "tiny data" (freeze, no lexical stack); the data is tiny only when most rows sit in rare labels."""
    tail = {f"big{i}": 300 for i in range(20)} | {f"rare{i}": 1 + i % 7 for i in range(102)}
    lexical = CASES["words carry the label: stack TF-IDF with the encoder"][0]["lexical"]
    recipe, fired = _fired({"rows": 6400, "train_rows": 5120, "classes": 122, "min_class": 1, "labels": tail,
                            "lexical": lexical}, {})
    assert sum(v for k, v in tail.items() if k.startswith("rare")) / sum(tail.values()) < 0.1
    assert "tiny data: train the head and the top block" not in fired
    assert recipe["method"]["name"] == "lora" and recipe["train"]["lexical"] == "stack"
    # 350 rows of 650 in labels under 8 rows; a causal LM classifier (an encoder this sparse gets the pair stage)
    rare = {"a": 300} | {f"rare{i}": 5 for i in range(70)}
    recipe, fired = _fired({"rows": 650, "train_rows": 520, "classes": 71, "min_class": 5, "labels": rare,
                            "lexical": lexical, "encoder": False}, {})
    assert recipe["method"]["name"] == "freeze" and "lexical" not in recipe["train"]
    assert "54% of them in labels with fewer than 8 rows" in fired["tiny data: train the head and the top block"][
        "because"]


def test_a_small_encoder_with_thousands_of_rows_moves_every_weight_whatever_its_rarest_label():
    """FOLDOC's shape on MiniLM (22M weights): the study in benchmarks/README.md found full fine-tuning at LR 1.5e-4
    4.8 points of validation macro-F1 above LoRA in 1.18x its time, so the CPU's 20,000-row floor and the
    50-row smallest label that hold for bigger bases do not apply."""
    full = "enough data and compute: full fine-tuning"
    tail = {f"big{i}": 300 for i in range(20)} | {f"rare{i}": 1 + i % 7 for i in range(102)}
    foldoc = {"rows": 6400, "train_rows": 5120, "classes": 122, "min_class": 1, "labels": tail,
              "lexical": CASES["words carry the label: stack TF-IDF with the encoder"][0]["lexical"]}
    recipe, fired = _fired(foldoc | {"model_params": 22_337_280}, {})
    assert recipe["method"]["name"] == "full" and recipe["train"]["lexical"] == "stack"
    assert (recipe["train"]["lr"], recipe["train"]["head_lr"]) == (1.5e-4, 3e-3)
    assert "layer_decay" not in recipe["train"] and "22M-weight encoder" in fired[full]["because"]
    for other in ({"model_params": 110_000_000}, {"model_params": 0}, {"model_params": 22_337_280, "encoder": False},
                  {"model_params": 22_337_280, "train_rows": 3000, "rows": 3750}):
        recipe, _ = _fired(foldoc | other, {})
        assert recipe["method"]["name"] == "lora", other


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
    assert methods == [("freeze", None), ("full", None), ("lora", 8)]  # 4,000 training rows on a small encoder
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


def test_the_estimate_is_steps_times_the_timed_step_plus_evaluation(monkeypatch):
    from nichetune.recommend import estimate as est

    e = dataclasses.replace(MID, rows=1000, train_rows=800, length_quantiles=tuple(range(0, 401, 20)))
    recipe = load_recipe(data={"task": "classification", "output_dir": "r", "data": {"train": __file__},
                               "model": {"name": "m", "max_length": 200}, "method": {"name": "lora"},
                               "train": {"epochs": 3, "batch_size": 16}})
    timing = est.estimate(recipe, e, seconds_per_step=2.0)
    # 800 rows / 16 = 50 steps an epoch, 150 in all; 200 held-out rows evaluated 4 times at a third of a step
    assert timing.steps == 150
    assert timing.minutes == pytest.approx((150 + 4 * 200 / 16 / 3) * 2.0 / 60)
    # lengths 0..400 clipped at 200: mean of the clipped quantile midpoints
    q = np.minimum(np.arange(0, 401, 20), 200)
    assert timing.tokens_per_row == pytest.approx(((q[:-1] + q[1:]) / 2).mean())


def test_a_budget_cuts_epochs_to_two_then_length_then_epochs_then_method(monkeypatch):
    from nichetune.recommend import estimate as est

    calls = []

    def fake_time(recipe, labels, tokens):  # 0.01 s per token of a row, full fine-tuning twice LoRA's cost
        calls.append(recipe.method.name)
        return 0.01 * tokens * (2 if recipe.method.name == "full" else 1)

    monkeypatch.setattr(est, "time_step", fake_time)
    e = dataclasses.replace(MID, rows=5000, train_rows=4000, length_quantiles=tuple(range(0, 2001, 100)))
    raw = {"task": "classification", "output_dir": "r", "data": {"train": __file__},
           "model": {"name": "m", "max_length": 512}, "method": {"name": "full"},
           "train": {"epochs": 5, "batch_size": 16, "lr": 5e-5}}
    raw2, timing, changes = est.fit_budget(raw, lambda r: load_recipe(data=r), e, budget_minutes=1.0)
    assert changes[:4] == ["epochs 5 -> 2", "max_length 512 -> 256", "epochs 2 -> 1", "max_length 256 -> 128"]
    assert changes[4] == "full fine-tuning -> LoRA r=16" and raw2["method"]["name"] == "lora"
    assert calls == ["full", "full", "full", "lora"]  # timed again at each new length and method
    assert timing.minutes > 1.0 and changes[-1].startswith("still about")
    loose, timing, none = est.fit_budget(raw, lambda r: load_recipe(data=r), e, budget_minutes=10_000)
    assert loose == raw and none == []


def test_recommend_prints_the_lexical_bar_and_the_estimate_and_fits_a_budget(tmp_path, tiny_bert_dir, capsys):
    data = write_jsonl(tmp_path / "tickets.jsonl", _reviews(600, 1))
    args = ["recommend", "--data", str(data), "--model", str(tiny_bert_dir), "--out", str(tmp_path / "r.yaml")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "words alone (TF-IDF, held-out 20%): TF-IDF + logistic regression accuracy" in out
    said = r"(about \d+ minutes|about a minute|under a minute)"  # a tiny model's run: "under a minute"
    assert re.search(f"estimated training time: {said} \\(", out) and "timed on this machine" in out
    assert re.search(f"# Estimated training time: {said} on this machine", (tmp_path / "r.yaml").read_text())
    assert load_recipe(tmp_path / "r.yaml").train.lexical == "stack"
    assert main([*args, "--budget-minutes", "0.0001"]) == 0
    out = capsys.readouterr().out
    assert "- time budget: " in out and "epochs 10 -> 2" in out and "still about" in out
    assert load_recipe(tmp_path / "r.yaml").train.epochs == 1
    assert main([*args, "--budget-minutes", "5", "--no-estimate"]) == 1
    assert "--no-estimate" in capsys.readouterr().err


def test_a_shorter_window_that_leaves_room_gives_epochs_back(monkeypatch):
    from nichetune.recommend import estimate as est

    # a step's cost grows with the square of the row length: halving the window frees three quarters of the time
    monkeypatch.setattr(est, "time_step", lambda recipe, labels, tokens: 1e-4 * tokens**2)
    e = dataclasses.replace(MID, rows=5000, train_rows=4000, length_quantiles=tuple(range(0, 2001, 100)))
    raw = {"task": "classification", "output_dir": "r", "data": {"train": __file__},
           "model": {"name": "m", "max_length": 512}, "method": {"name": "lora"},
           "train": {"epochs": 5, "batch_size": 16}}
    full = est.estimate(load_recipe(data=raw), e).minutes
    budget = full * 0.3
    fitted, timing, changes = est.fit_budget(raw, lambda r: load_recipe(data=r), e, budget_minutes=budget)
    assert changes[:2] == ["epochs 5 -> 2", "max_length 512 -> 256"]
    assert changes[2].endswith("(room left in the budget)") and 2 < fitted["train"]["epochs"] <= 5
    assert timing.minutes <= budget * est.BUDGET_SHARE  # a margin for timing noise: runs overran estimates by 20%
    more = est.estimate(load_recipe(data={**fitted, "train": {**fitted["train"],
                                                             "epochs": fitted["train"]["epochs"] + 1}}), e)
    assert fitted["train"]["epochs"] == 5 or more.minutes > budget * est.BUDGET_SHARE  # the most epochs that fit


def test_a_budget_is_planned_with_a_margin_for_timing_noise(monkeypatch):
    from nichetune.recommend import estimate as est

    # BBC News: the estimate said 19 minutes of a 20-minute budget, the run took 22.8 (timed steps vary by 10%)
    monkeypatch.setattr(est, "time_step", lambda recipe, labels, tokens: 0.01 * tokens)
    e = dataclasses.replace(MID, rows=5000, train_rows=4000, length_quantiles=tuple(range(0, 2001, 100)))
    raw = {"task": "classification", "output_dir": "r", "data": {"train": __file__},
           "model": {"name": "m", "max_length": 512}, "method": {"name": "lora"},
           "train": {"epochs": 3, "batch_size": 16}}
    full = est.estimate(load_recipe(data=raw), e).minutes
    fitted, timing, changes = est.fit_budget(raw, lambda r: load_recipe(data=r), e, budget_minutes=full / 0.95)
    assert changes == ["epochs 3 -> 2"] and timing.minutes <= full / 0.95 * est.BUDGET_SHARE
    kept, _, none = est.fit_budget(raw, lambda r: load_recipe(data=r), e, budget_minutes=full / 0.8)
    assert kept == raw and none == []


def test_minutes_are_said_in_words_a_reader_trusts():
    from nichetune.recommend.estimate import minutes_words

    assert [minutes_words(m) for m in (0.0, 0.4, 0.5, 0.6, 1.4, 1.6, 6.4)] == [
        "under a minute", "under a minute", "under a minute", "about a minute", "about a minute", "about 2 minutes",
        "about 6 minutes"]


@pytest.mark.parametrize(("int8_dot", "bf16", "want"), [(True, False, "int8"), (False, True, "bf16"),
                                                        (False, False, "none")])
def test_a_tight_budget_plans_the_weights_that_serve_fastest_on_this_cpu(monkeypatch, int8_dot, bf16, want):
    """A decoder's int8 is torchao's: without int8 dot products it runs slower than fp32 (18x on MiniLM, AVX2).
    An encoder classifier's int8 is ONNX's, fast on any x86 CPU."""
    from nichetune.recommend import rules

    monkeypatch.setattr(rules, "cpu_has_int8_dot", lambda: int8_dot)
    monkeypatch.setattr(rules, "cpu_has_fast_bf16", lambda: bf16)
    tight = "tight latency: int8, merged, shorter inputs"
    recipe, fired = _fired({"task": "sft", "classes": 0, "labels": {}}, {"latency_ms": 500})
    assert recipe["deploy"]["quantize"] == want and recipe["deploy"]["merge"] is True
    assert ("int8 dot-product" in fired[tight]["because"]) == (want != "int8")
    classifier, _ = _fired({}, {"latency_ms": 20})
    assert classifier["deploy"]["quantize"] == "int8"
    on_a_decoder, _ = _fired({"encoder": False}, {"latency_ms": 20})  # ONNX holds no decoders: torchao's int8 it is
    assert on_a_decoder["deploy"]["quantize"] == want


def test_held_out_files_of_your_own_train_every_row_and_take_no_split(tmp_path, tiny_bert_dir, capsys):
    """The few-shot case: 24 labelled rows, and validation and test files kept apart. The rules must count all 24 as
    training rows and decide no split; the lexical bar is scored on the validation file."""
    from nichetune.tasks.lexical import KINDS, fit_lexical

    rows = _reviews(60, 3, groups=6)
    train_file = write_jsonl(tmp_path / "few.jsonl", rows[:24])
    val_file, test_file = write_jsonl(tmp_path / "val.jsonl", rows[24:36]), write_jsonl(tmp_path / "t.jsonl", rows[36:])
    model = str(tiny_bert_dir)
    given = recommend(str(train_file), Constraints(model=model), validation=str(val_file), test=str(test_file),
                      time_it=False)
    split = recommend(str(train_file), Constraints(model=model), time_it=False)
    assert given["evidence"]["train_rows"] == 24 and split["evidence"]["train_rows"] == 19
    assert given["recipe"]["data"]["validation"] == str(val_file) and given["recipe"]["data"]["test"] == str(test_file)
    split_rules = {"small data: a test split big enough to be evidence", "grouped rows: group-aware split"}
    assert split_rules <= {d["rule"] for d in split["decisions"]}
    assert not split_rules & {d["rule"] for d in given["decisions"]}
    lexical = given["evidence"]["lexical"]
    assert lexical["held_out"] == 12
    y = [r["label"] == "positive" for r in rows]
    for kind in KINDS:  # the same fit, by hand: all 24 rows, scored on the 12 validation rows
        fitted = fit_lexical([r["text"] for r in rows[:24]], np.array(y[:24], dtype=int), 2, kinds=(kind,))
        hits = fitted.predict([r["text"] for r in rows[24:36]]) == np.array(y[24:36], dtype=int)
        assert lexical[kind]["accuracy"] == pytest.approx(hits.mean(), abs=1e-4)
    assert main(["recommend", "--data", str(train_file), "--validation", str(val_file), "--model", model,
                 "--no-estimate", "--out", str(tmp_path / "r.yaml")]) == 1
    assert "--validation and --test come together" in capsys.readouterr().err
    assert main(["recommend", "--data", str(train_file), "--validation", str(val_file), "--test", str(test_file),
                 "--model", model, "--no-estimate", "--out", str(tmp_path / "r.yaml")]) == 0
    out = capsys.readouterr().out
    assert "words alone (TF-IDF, 12 validation rows)" in out and "test split big enough" not in out
    # and how far the base model goes untrained: its labels worded as chosen on the 24 rows, scored on the 12
    zero = given["evidence"]["zero_shot"]
    encoder, tokenizer = load_encoder(model)
    wording = choose_wording(lambda texts: sentence_vectors(encoder, tokenizer, texts)[0], rows[:24],
                             ["negative", "positive"])
    said = classify(model, [r["text"] for r in rows[24:36]], labels=wording.of(["negative", "positive"]))
    assert zero["template"] == wording.template and zero["scored_on"] == "12 validation rows"
    hits = [p.label == r["label"] for p, r in zip(said, rows[24:36], strict=True)]
    assert zero["accuracy"] == pytest.approx(np.mean(hits), abs=1e-4)
    # and, on the 36 rows together, the zero-shot against what the rows teach a head on the untrained embeddings
    # (scikit-learn's logistic regression, cross-validated on the same stratified folds)
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    x = sentence_vectors(encoder, tokenizer, [r["text"] for r in rows[:36]])[0]
    head = cross_val_predict(LogisticRegression(max_iter=5000), x, y[:36],
                             cv=StratifiedKFold(4, shuffle=True, random_state=0))
    cv = zero["cross_validated"]
    assert cv["rows"] == 36 and cv["folds"] == 4
    assert cv["head_macro_f1"] == pytest.approx(f1_score(y[:36], head, average="macro"), abs=1e-4)
    said_all = classify(model, [r["text"] for r in rows[:36]], labels=wording.of(["negative", "positive"]))
    assert cv["zero_shot_macro_f1"] == pytest.approx(
        f1_score(y[:36], [p.label == "positive" for p in said_all], average="macro"), abs=1e-4)
    assert split["evidence"]["zero_shot"]["scored_on"] == "the 24 rows it was chosen on"
    assert "cross_validated" not in split["evidence"]["zero_shot"]  # no held-out rows: nothing to compare on
    assert f"labels worded as '{wording.template}', chosen on 24 training rows; scored on 12 validation rows): " \
           f"accuracy {zero['accuracy']:.3f}" in out
    assert load_recipe(tmp_path / "r.yaml").data.validation == str(val_file)

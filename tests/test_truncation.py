"""Head + tail truncation and windows: the arithmetic by hand, and runs whose label sits at the end of long texts,
which only a classifier reading the tail can learn; every reader (training, eval, the ONNX runner) cuts texts the same
way, and a windows run's logits are the mean of its windows' everywhere."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import transformers

from nichetune.cli import main
from nichetune.config.recipe import load_recipe
from nichetune.run.loading import load_run
from nichetune.tasks.scoring import classifier_logits
from nichetune.train.run import train
from nichetune.truncation import (
    encode_ids,
    encode_windows,
    head_tail,
    mean_by_owner,
    seen_share,
    set_truncation,
    special_ids,
    truncation_of,
    windows,
)
from tiny_data import write_jsonl

FILLER = "and i stopped so my side with no".split()


def test_head_tail_keeps_a_quarter_of_the_head_and_the_rest_from_the_tail():
    body = list(range(100))
    assert head_tail(body, 100) == body and head_tail(body[:10], 40) == body[:10]
    cut = head_tail(body, 40)
    assert cut == list(range(10)) + list(range(70, 100)) and len(cut) == 40


def test_windows_overlap_by_half_and_the_last_ends_at_the_end():
    body = list(range(100))
    assert windows(body[:40], 40) == [body[:40]]
    assert [w[0] for w in windows(body, 40)] == [0, 20, 40, 60] and all(len(w) == 40 for w in windows(body, 40))
    assert [w[0] for w in windows(body[:45], 40)] == [0, 5]  # a short overhang: one more window, flush to the end
    assert sorted({t for w in windows(body, 30) for t in w}) == body  # every token read
    logits = np.array([[1.0, 0.0], [3.0, 2.0], [5.0, 5.0]])
    np.testing.assert_allclose(mean_by_owner(logits, [0, 0, 1], 2), [[2.0, 1.0], [5.0, 5.0]])


def test_encode_ids_and_the_seen_share_on_a_real_tokenizer(tiny_bert_dir):
    tok = transformers.AutoTokenizer.from_pretrained(tiny_bert_dir)
    texts = [" ".join(f"w{i}" for i in range(n)) for n in (3, 50)]
    bodies = tok(texts, add_special_tokens=False)["input_ids"]
    assert truncation_of(tok) == "head"
    assert encode_ids(tok, texts, 12) == tok(texts, truncation=True, max_length=12)["input_ids"]
    set_truncation(tok, "head_tail")
    prefix, suffix = special_ids(tok)
    assert prefix == [tok.cls_token_id] and suffix == [tok.sep_token_id]
    ids = encode_ids(tok, texts, 12)
    assert ids[0] == prefix + bodies[0] + suffix  # short: whole
    assert ids[1] == prefix + bodies[1][:2] + bodies[1][-8:] + suffix  # 10 body tokens: 2 head, 8 tail
    share = seen_share(tok, texts, 12)
    total = len(bodies[0]) + len(bodies[1])
    assert share["token_share"] == pytest.approx((len(bodies[0]) + 10) / total) and share["texts_cut"] == 0.5
    set_truncation(tok, "windows")
    assert encode_ids(tok, texts, 12) == ids  # training reads head + tail
    ids, owner = encode_windows(tok, texts, 12)
    starts = [*range(0, len(bodies[1]) - 10, 5), len(bodies[1]) - 10]
    assert ids == [prefix + bodies[0] + suffix] + [prefix + bodies[1][s : s + 10] + suffix for s in starts]
    assert owner == [0] + [1] * len(starts)
    share = seen_share(tok, texts, 12)
    assert share["token_share"] == 1.0 and share["windows_per_text"] == (1 + len(starts)) / 2


def _rows(n: int, seed: int) -> list[dict]:
    """Long filler, the label's word last: a reader of the first tokens sees no signal."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "positive" if i % 2 else "negative"
        words = [rng.choice(FILLER) for _ in range(60)] + (["helped", "effects"] if i % 2 else ["terrible", "nausea"])
        rows.append({"id": f"t{i}", "text": " ".join(words), "label": label})
    return rows


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_bert_dir) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("truncation")
    write_jsonl(root / "d.jsonl", _rows(240, seed=5))
    out = {}
    for truncation in ("head", "head_tail", "windows"):
        recipe = load_recipe(data={
            "task": "classification", "output_dir": str(root / truncation),
            "model": {"name": str(tiny_bert_dir), "max_length": 24, "truncation": truncation},
            "data": {"train": str(root / "d.jsonl"), "split": {"ratios": [0.6, 0.2, 0.2]}},
            "method": {"name": "full"}, "train": {"epochs": 6, "batch_size": 8, "lr": 1e-3, "precision": "fp32"}})
        train(recipe)
        out[truncation] = root / truncation
    return out


def test_only_the_tail_reader_learns_a_label_at_the_end(runs):
    head = load_run(runs["head"]).manifest.result.test["accuracy"]
    tail = load_run(runs["head_tail"]).manifest.result.test["accuracy"]
    assert head <= 0.65 and tail >= 0.9
    assert load_run(runs["windows"]).manifest.result.test["accuracy"] >= 0.9  # its last window holds the label


def test_a_windows_run_averages_its_windows_logits_in_eval_and_onnx(runs, tmp_path, capsys):
    run = load_run(runs["windows"])
    texts = [r["text"] for r in _rows(6, seed=9)] + ["helped effects"]  # one short text: a single window
    import torch

    ids, owner = encode_windows(run.tokenizer, texts, 24)
    assert len(ids) > 2 * len(texts)  # 62-word texts, 22-token windows
    with torch.no_grad():
        each = [run.model(input_ids=torch.tensor([row])).logits[0].numpy() for row in ids]
    expected = np.stack([np.mean([each[j] for j in range(len(ids)) if owner[j] == i], axis=0)
                         for i in range(len(texts))])
    np.testing.assert_allclose(classifier_logits(run.model, run.tokenizer, texts, max_length=24), expected,
                               atol=1e-5)
    assert main(["eval", str(runs["windows"]), "--no-zero-shot", "--latency-requests", "3"]) == 0
    metrics = json.loads((runs["windows"] / "eval" / "metrics.json").read_text())
    assert metrics["inputs"]["token_share"] == 1.0 and metrics["inputs"]["windows_per_text"] > 2
    assert "and it read those whole, in overlapping windows of 24 tokens" in capsys.readouterr().out
    assert "whole, in overlapping windows of 24 tokens" in (runs["windows"] / "report.html").read_text()
    assert main(["export", str(runs["windows"]), "--to", "onnx", "--out", str(tmp_path / "onnx")]) == 0
    parity = json.loads((tmp_path / "onnx" / "parity.json").read_text())
    assert parity["status"] == "passed" and parity["max_logit_diff"] < 1e-3
    from nichetune.export.onnx_runtime import OnnxClassifier

    np.testing.assert_allclose(OnnxClassifier(tmp_path / "onnx").logits(texts), expected, atol=1e-4)


def test_the_choice_travels_with_the_weights_to_eval_and_onnx(runs, tmp_path, capsys):
    run = load_run(runs["head_tail"])
    assert json.loads((runs["head_tail"] / "model" / "tokenizer_config.json").read_text())[
        "nichetune_truncation"] == "head_tail"
    texts = [r["text"] for r in _rows(6, seed=9)]
    import torch

    ids = encode_ids(run.tokenizer, texts, 24)
    with torch.no_grad():
        expected = np.stack([run.model(input_ids=torch.tensor([row])).logits[0].numpy() for row in ids])
    np.testing.assert_allclose(classifier_logits(run.model, run.tokenizer, texts, max_length=24), expected,
                               atol=1e-5)
    assert main(["eval", str(runs["head_tail"]), "--no-zero-shot", "--latency-requests", "3"]) == 0
    metrics = json.loads((runs["head_tail"] / "eval" / "metrics.json").read_text())
    assert metrics["inputs"]["truncation"] == "head_tail" and metrics["inputs"]["texts_cut"] == 1.0
    said = capsys.readouterr().out
    assert f"the model read {metrics['inputs']['token_share']:.0%} of the evaluation tokens: 100% of the texts" in said
    report = (runs["head_tail"] / "report.html").read_text()
    assert 'id="text-seen"' in report and "the first quarter and the last three quarters of 24 tokens" in report
    assert 0 < metrics["inputs"]["token_share"] < 0.5
    assert main(["export", str(runs["head_tail"]), "--to", "onnx", "--out", str(tmp_path / "onnx")]) == 0
    parity = json.loads((tmp_path / "onnx" / "parity.json").read_text())
    assert parity["status"] == "passed" and parity["max_logit_diff"] < 1e-3

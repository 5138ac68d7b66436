"""The SetFit-style stage: pairs drawn as described, and on a tiny encoder the stage pulls same-label texts together
(cosine loss falls) before the head trains, recorded in the run's manifest."""

from __future__ import annotations

from collections import Counter

import pytest

from nichetune.config.recipe import load_recipe
from nichetune.errors import NichetuneError
from nichetune.train.contrastive import pair_indices
from nichetune.train.run import train
from tiny_data import review_rows, write_jsonl


def test_pairs_give_each_row_one_same_label_and_one_other_label_partner_per_iteration():
    labels = [0, 0, 0, 1, 1, 2]
    pairs = pair_indices(labels, iterations=5, seed=0)
    assert len(pairs) == 2 * len(labels) * 5
    for i, j, target in pairs:
        assert (labels[i] == labels[j]) == (target == 1.0)
        if target == 1.0 and labels.count(labels[i]) > 1:
            assert i != j
    assert Counter((i, t) for i, _, t in pairs) == {(i, t): 5 for i in range(6) for t in (0.0, 1.0)}
    assert pairs == pair_indices(labels, iterations=5, seed=0) and pairs != pair_indices(labels, 5, seed=1)
    # a label with a single row pairs with itself as its positive
    assert all(j == 5 for i, j, t in pair_indices(labels, 3, 0) if i == 5 and t == 1.0)


def test_the_stage_pulls_labels_apart_before_the_head_trains(tmp_path, tiny_bert_dir):
    write_jsonl(tmp_path / "d.jsonl", review_rows(48, seed=2, own=3, noise=1))
    recipe = load_recipe(data={
        "task": "classification", "output_dir": str(tmp_path / "run"), "model": {"name": str(tiny_bert_dir)},
        "data": {"train": str(tmp_path / "d.jsonl"), "split": {"ratios": [0.5, 0.25, 0.25]}},
        "method": {"name": "full"}, "train": {"epochs": 2, "batch_size": 8, "lr": 1e-2, "precision": "fp32",
                                              "contrastive": 10}})
    manifest = train(recipe)
    stage = manifest.result.contrastive
    assert stage["pairs"] == 2 * 24 * 10 and stage["steps"] == 60
    assert stage["loss_last"] < 0.5 * stage["loss_first"]


def test_a_generator_has_no_labels_to_pair(tmp_path, tiny_llama_dir):
    (tmp_path / "x.jsonl").write_text("")
    recipe = load_recipe(data={"task": "sft", "output_dir": str(tmp_path / "r"), "model": {"name": str(tiny_llama_dir)},
                               "data": {"train": str(tmp_path / "x.jsonl")}, "method": {"name": "full"},
                               "train": {"contrastive": 5}})
    with pytest.raises(NichetuneError, match="contrastive"):
        train(recipe)

"""Recipes that used to pass --check and die later: each is refused at --check, naming the key,
before any weights load (the checks read config.json and build the model on the meta device)."""

import pytest
import yaml

from nichetune.cli import main
from nichetune.config.recipe import load_recipe
from nichetune.errors import NichetuneError
from nichetune.tasks.metrics import METRICS
from tiny_data import review_rows, write_jsonl


def _recipe(tmp_path, model_dir, **sections) -> dict:
    data = write_jsonl(tmp_path / "d.jsonl", review_rows(40, seed=0, own=3, noise=1))
    base = {"task": "classification", "output_dir": str(tmp_path / "run"), "model": {"name": str(model_dir)},
            "data": {"train": str(data), "split": {"group_field": None}}, "method": {"name": "lora"}}
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return base


@pytest.mark.parametrize("override, key", [
    ("data.split.ratios=[1.5,-0.5]", "data.split.ratios"),
    ("data.split.ratios=[0.5,0.6]", "data.split.ratios"),
    ("data.split.ratios=[0.2,0.2,0.2,0.4]", "data.split.ratios"),
    ("model.max_length=1.0e+9", "model.max_length"),  # YAML reads a bare 1e9 as a string; these are numbers
    ("model.max_length=1000000000", "model.max_length"),
    ("train.warmup=5.5", "train.warmup"),
    ("seed=-1", "seed"),
    ("data.split.seed=-3", "data.split.seed"),
    ("eval.metric=acuracy", "eval.metric"),
    ("train.early_stopping={metric: f1}", "train.early_stopping.metric"),
    ("train.group_lrs={'layer.(0': 1e-4}", "train.group_lrs"),
    ("method={name: freeze, patterns: ['[unclosed']}", "method.patterns"),
])
def test_static_mistakes_are_refused_naming_the_key(override, key, tmp_path, tiny_classifier_dir, capsys):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(_recipe(tmp_path, tiny_classifier_dir)))
    assert main(["train", str(path), override, "--check"]) == 1
    err = capsys.readouterr().err
    assert "invalid recipe" in err and key.split(".")[-1] in err, err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("override, words", [
    ("method.target_modules=[nosuch]", "match no module"),
    ("method={name: ia3, target_modules: [key], feedforward_modules: [output.dense]}", "subset"),
])
def test_model_aware_mistakes_are_refused_by_check(override, words, tmp_path, tiny_classifier_dir, capsys,
                                                    monkeypatch):
    import transformers

    def no_weights(*args, **kwargs):
        raise AssertionError("a check must not load weights")

    monkeypatch.setattr(transformers.AutoModelForSequenceClassification, "from_pretrained", no_weights)
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(_recipe(tmp_path, tiny_classifier_dir)))
    assert main(["train", str(path), override, "--check"]) == 1
    err = capsys.readouterr().err
    assert words in err and "how to fix" in err and "Traceback" not in err


def test_valid_settings_still_pass(tmp_path, tiny_classifier_dir):
    recipe = load_recipe(data=_recipe(tmp_path, tiny_classifier_dir,
                                      train={"warmup": 12, "group_lrs": {"layer\\.0": 1e-4}},
                                      eval={"metric": "macro_f1"}, data={"split": {"ratios": [0.7, 0.3]}}))
    assert recipe.train.warmup == 12 and recipe.data.split.ratios == (0.7, 0.3)
    with pytest.raises(NichetuneError, match="perplexity"):  # a causal metric on a classifier
        load_recipe(data=_recipe(tmp_path, tiny_classifier_dir, eval={"metric": "perplexity"}))


def test_metric_names_are_exactly_what_the_tasks_report(tiny_classifier_dir, tiny_llama_dir):
    import torch

    from nichetune.tasks import build_task

    cls = build_task("classification", ["a", "b"], load_recipe(data=_recipe_stub()).train)
    lm = build_task("sft", None, load_recipe(data=_recipe_stub()).train)
    assert set(cls.metrics(torch.zeros(cls.sums_size))) - {"examples"} == set(METRICS["classification"])
    assert set(lm.metrics(torch.zeros(lm.sums_size))) - {"examples", "tokens"} == set(METRICS["causal"])


def _recipe_stub() -> dict:
    return {"task": "classification", "output_dir": "x", "data": {"dataset": "bbc-news"}, "method": {"name": "full"}}


def test_data_split_ratios_error_is_clear(tmp_path, capsys):
    data = write_jsonl(tmp_path / "d.jsonl", review_rows(10, seed=0, own=3, noise=1))
    assert main(["data", "split", str(data), "--out-dir", str(tmp_path / "s"), "--ratios", "0.5,0.6"]) == 1
    err = capsys.readouterr().err
    assert "sum to 1" in err and "Traceback" not in err


def test_data_split_without_group_field_splits_row_by_row(tmp_path, capsys):
    rows = review_rows(20, seed=0, own=3, noise=1)
    for i, row in enumerate(rows):
        row["group"] = "big" if i < 14 else f"small{i % 2}"  # groups of 14, 3 and 3 rows
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    assert main(["data", "split", str(data), "--out-dir", str(tmp_path / "s"), "--ratios", "0.5,0.5"]) == 0
    train = (tmp_path / "s" / "train.jsonl").read_text().splitlines()
    assert len(train) == 10  # row by row; whole groups could only give 3, 6, 14 or 17 rows

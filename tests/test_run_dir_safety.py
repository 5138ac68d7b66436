"""The run directory is ours alone: --fresh never deletes what is not a run, one process trains into
it at a time, and a start that fails before training never blocks the corrected retry."""

from __future__ import annotations

import pytest
import yaml

from nichetune.cli import main
from nichetune.run.directory import run_lock
from nichetune.run.paths import LOCK
from tiny_data import review_rows, write_jsonl


def _recipe(tmp_path, model_dir, out, **extra) -> str:
    data = write_jsonl(tmp_path / "d.jsonl", review_rows(32, seed=0, own=3, noise=1))
    recipe = {"task": "classification", "output_dir": str(out), "model": {"name": str(model_dir)},
              "data": {"train": str(data), "split": {"group_field": None}}, "method": {"name": "full"},
              "train": {"epochs": 1, "batch_size": 8, "precision": "fp32"}, "eval": {"test": False}, **extra}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return str(path)


def test_fresh_refuses_a_folder_that_is_not_a_run_and_deletes_nothing(tmp_path, tiny_bert_dir, capsys):
    precious = tmp_path / "thesis"
    (precious / "chapters").mkdir(parents=True)
    (precious / "notes.txt").write_text("years of work")
    (precious / "chapters" / "one.tex").write_text("\\chapter{One}")
    assert main(["train", _recipe(tmp_path, tiny_bert_dir, precious), "--fresh"]) == 1
    err = capsys.readouterr().err
    assert "not a nichetune run" in err and "nothing was deleted" in err
    assert (precious / "notes.txt").read_text() == "years of work"
    assert (precious / "chapters" / "one.tex").exists()


def test_fresh_replaces_a_run_but_keeps_files_no_run_writes(tmp_path, tiny_bert_dir, capsys):
    out = tmp_path / "run"
    recipe = _recipe(tmp_path, tiny_bert_dir, out)
    assert main(["train", recipe]) == 0
    (out / "my-notes.md").write_text("why this run")
    (out / "checkpoints" / ".step-0000099.abcd.partial").mkdir()
    first = (out / "manifest.json").read_text()
    assert main(["train", recipe, "--fresh"]) == 0
    assert (out / "manifest.json").read_text() != first  # a new run (new finish time)
    assert (out / "my-notes.md").read_text() == "why this run"
    assert not list(out.rglob("*.partial"))
    assert "keeps files no run writes: my-notes.md" in capsys.readouterr().err


def test_output_dir_that_is_a_file_is_a_clear_error(tmp_path, tiny_bert_dir, capsys):
    target = tmp_path / "a-file"
    target.write_text("not a folder")
    assert main(["train", _recipe(tmp_path, tiny_bert_dir, target)]) == 1
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and "Traceback" not in err
    assert target.read_text() == "not a folder"


def test_a_second_train_on_the_same_folder_is_refused(tmp_path, tiny_bert_dir, capsys):
    out = tmp_path / "run"
    with run_lock(out):  # what a first `nichetune train` holds while it runs
        assert main(["train", _recipe(tmp_path, tiny_bert_dir, out)]) == 1
        err = capsys.readouterr().err
        assert "is being trained into by pid" in err
        assert not (out / "metrics.jsonl").exists() and not (out / "recipe.yaml").exists()
    assert main(["train", _recipe(tmp_path, tiny_bert_dir, out)]) == 0  # released: it trains
    assert (out / "manifest.json").is_file() and (out / LOCK).is_file()


def test_a_failed_start_does_not_block_the_corrected_retry(tmp_path, tiny_bert_dir, capsys):
    out = tmp_path / "run"
    broken = _recipe(tmp_path, tiny_bert_dir, out)
    spec = yaml.safe_load(open(broken))
    spec["data"]["train"] = str(tmp_path / "no-such-file.jsonl")
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(spec))
    assert main(["train", str(tmp_path / "broken.yaml")]) == 1
    assert "no such file" in capsys.readouterr().err
    assert not (out / "manifest.json").exists()
    assert main(["train", broken]) == 0  # the corrected recipe differs, and nothing had been trained
    assert (out / "manifest.json").is_file()


def test_an_unfinished_run_with_checkpoints_still_refuses_another_recipe(tmp_path, tiny_bert_dir, capsys):
    out = tmp_path / "run"
    recipe = _recipe(tmp_path, tiny_bert_dir, out)
    assert main(["train", recipe]) == 0
    (out / "manifest.json").unlink()  # as if killed after its checkpoints
    assert list((out / "checkpoints").glob("step-*"))
    assert main(["train", recipe, "train.lr=1e-3"]) == 1
    assert "unfinished run of a different recipe" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["recipe.yaml", "manifest.json"])
def test_run_entries_alone_mark_a_run(name, tmp_path):
    from nichetune.run.directory import check_output_dir

    (tmp_path / "r").mkdir()
    (tmp_path / "r" / name).write_text("{}")
    assert check_output_dir(tmp_path / "r", None, fresh=True) == "new"


def test_a_saved_recipe_from_before_a_schema_section_was_added_is_still_the_same_recipe(tmp_path):
    """The demo retrained every finished run when the recipe schema gained ``retrieval``: the saved YAML lacked
    the new key. Read through today's schema, it is the same recipe; a changed setting still is not."""
    from nichetune.config.recipe import load_recipe
    from nichetune.run.directory import same_recipe
    from nichetune.run.paths import RunPaths

    recipe = load_recipe(data={"task": "sft", "output_dir": str(tmp_path / "run"), "data": {"dataset": "foldoc"},
                               "method": {"name": "lora"}})
    saved = recipe.model_dump(mode="json")
    del saved["retrieval"]  # written before the section existed
    paths = RunPaths(tmp_path / "run")
    paths.root.mkdir()
    paths.recipe.write_text(yaml.safe_dump(saved))
    assert same_recipe(paths.root, recipe)
    assert not same_recipe(paths.root, load_recipe(data={**recipe.model_dump(mode="json"), "seed": 1}))
    paths.recipe.write_text(yaml.safe_dump({**saved, "unknown": 1}))
    assert not same_recipe(paths.root, recipe)

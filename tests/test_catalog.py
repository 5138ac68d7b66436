import json
import re
from collections import Counter

import pytest

from nichetune.assets import package_file
from nichetune.data.catalog import CATALOG, dataset_info, export_dataset, load_dataset
from nichetune.data.catalog import foldoc as foldoc_mod
from nichetune.data.validate import validate_file
from nichetune.errors import AssetMissingError, NichetuneError


def test_bbc_news_is_complete():
    rows = load_dataset("bbc-news")
    assert len(rows) == 2225
    assert Counter(r["label"] for r in rows) == {"sports": 511, "business": 510, "politics": 417,
                                                 "tech": 401, "entertainment": 386}
    cp1252 = next(r for r in rows if r["id"] == "sports/199")  # the one non-UTF-8 article
    assert "\ufffd" not in cp1252["text"] and "£" in cp1252["text"]
    assert len({r["id"] for r in rows}) == 2225


def test_drug_reviews_are_unescaped_with_condition_slices():
    rows = load_dataset("drug-reviews")
    assert len(rows) == 979
    assert Counter(r["label"] for r in rows) == {"positive": 633, "negative": 256, "neutral": 90}
    assert Counter(r["original_split"] for r in rows) == {"train": 600, "test": 379}
    text = " ".join(r["text"] for r in rows)
    for entity in ("&#039;", "&quot;", "&amp;", "&rsquo;"):
        assert entity not in text
    assert not any(r["text"].startswith('"') for r in rows)
    assert Counter(r["condition"] for r in rows)["Birth Control"] == 193
    assert all(r["group"] == r["drug"].lower() for r in rows)
    # scraped "N</span> users found this comment helpful." fragments are not conditions
    assert not [r for r in rows if "<" in r["condition"] or "helpful" in r["condition"]]


def test_foldoc_pairs_are_clean_and_counted():
    rows = load_dataset("foldoc")
    stats = foldoc_mod.stats()
    assert len(rows) == stats["usable"] and stats["usable"] + stats["left_out_cross_reference_only"] == stats[
        "entries"]
    assert len(rows) > 10_000
    compiler = next(r for r in rows if r["term"] == "compiler")
    assert compiler["messages"][0]["content"] == "What does compiler mean in computing?"
    assert compiler["messages"][1]["content"].startswith("A program that converts another program from some "
                                                        "source language (or programming language) to machine")
    assert compiler["subject"] == "programming"
    answers = [r["messages"][1]["content"] for r in rows]
    assert not any("{" in a or "}" in a for a in answers)
    assert not any(re.search(r"\(\d{4}-\d{2}-\d{2}\)$", a) for a in answers)  # entry date stamps removed
    assert len({r["term"] for r in rows}) > 0.99 * len(rows)


def test_foldoc_subjects_only_tagged_entries():
    rows = load_dataset("foldoc-subjects")
    assert all(r["label"] == r["subjects"][0] for r in rows)
    assert Counter(r["label"] for r in rows).most_common(1)[0][0] == "language"


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_export_writes_every_row_and_revalidates(name, tmp_path):
    out = tmp_path / f"{name}.jsonl"
    n = export_dataset(name, out)
    assert n == len(out.read_text(encoding="utf-8").splitlines()) == len(load_dataset(name))
    report = validate_file(out, task=CATALOG[name].task)
    assert report.valid == n and report.quarantined == 0
    first = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert first == load_dataset(name)[0]


def test_info_reports_labels_and_slices():
    info = dataset_info("drug-reviews", samples=1)
    assert info["rows"] == 979 and info["labels"]["neutral"] == 90 and info["slice_fields"] == ["condition"]
    assert len(info["samples"]) == 1


def test_missing_package_error_names_the_install_command():
    with pytest.raises(AssetMissingError) as err:
        package_file("no-such-dist-xyz", "x/y.txt", "pip install --no-deps no-such-dist-xyz==1.0")
    assert err.value.hint == "pip install --no-deps no-such-dist-xyz==1.0"


def test_missing_foldoc_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("NICHETUNE_FOLDOC_DIR", str(tmp_path))
    monkeypatch.setenv("NICHETUNE_CACHE", str(tmp_path))
    monkeypatch.setattr(foldoc_mod, "dict_dir", foldoc_mod.dict_dir)
    if (foldoc_mod.Path("/usr/share/dictd") / "foldoc.dict.dz").exists():
        pytest.skip("dict-foldoc is installed system-wide")
    with pytest.raises(AssetMissingError) as err:
        foldoc_mod.dict_dir()
    assert "apt-get install dict-foldoc" in err.value.hint and "make assets" in err.value.hint


def test_unknown_dataset():
    with pytest.raises(NichetuneError, match="no built-in dataset"):
        load_dataset("imagenet")

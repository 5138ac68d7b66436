import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nichetune.cli import main
from nichetune.data.augment import augment_rows, eda, from_templates
from nichetune.data.provenance import lineage_report
from nichetune.data.split import contamination, fingerprint, parse_ratios, split_rows


def _rows(n, groups, labels="abc"):
    return [{"id": str(i), "text": f"row {i} about topic {i % 7}", "label": labels[i % len(labels)],
             "group": f"g{i % groups}"} for i in range(n)]


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.sampled_from("xyz")), min_size=1, max_size=120),
       st.sampled_from([(0.8, 0.1, 0.1), (0.7, 0.3), (0.5, 0.25, 0.25)]), st.booleans(), st.integers(0, 5))
def test_no_group_ever_spans_two_splits(items, ratios, stratify, seed):
    rows = [{"id": str(i), "text": str(i), "label": lab, "group": f"g{g}"} for i, (g, lab) in enumerate(items)]
    result = split_rows(rows, ratios, stratify=stratify, group_field="group", seed=seed)
    where: dict[str, set] = {}
    for name, part in result.splits.items():
        for r in part:
            where.setdefault(r["group"], set()).add(name)
    assert all(len(s) == 1 for s in where.values())
    assert sorted(r["id"] for part in result.splits.values() for r in part) == sorted(r["id"] for r in rows)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 40), st.sampled_from("xyz")), min_size=1, max_size=120),
       st.sampled_from([(0.8, 0.1, 0.1), (0.7, 0.3)]), st.booleans(), st.booleans(), st.integers(0, 5))
def test_copies_of_a_text_never_span_two_splits_unless_only_named_groups_hold_them(items, ratios, stratify, grouped,
                                                                                    seed):
    # copies differ in case and punctuation; a third of the rows have no group, the rest name one of 13
    rows = [{"id": str(i), "text": f"Article {t}." if i % 2 else f"article {t}", "label": lab,
             "group": f"g{g % 13}" if g % 3 else None} for i, (t, g, lab) in enumerate(items)]
    result = split_rows(rows, ratios, stratify=stratify, group_field="group" if grouped else None, seed=seed,
                        join_copies=True)
    split_of = {r["id"]: name for name, part in result.splits.items() for r in part}
    by_text: dict[str, list[dict]] = {}
    for r in rows:
        by_text.setdefault(r["text"].lower().rstrip("."), []).append(r)
    for same in by_text.values():
        if not grouped or any(r["group"] is None for r in same):
            assert len({split_of[r["id"]] for r in same}) == 1
    if grouped:
        homes: dict[str, set] = {}
        for r in rows:
            if r["group"]:
                homes.setdefault(r["group"], set()).add(split_of[r["id"]])
        assert all(len(s) == 1 for s in homes.values())
    assert sorted(split_of) == sorted(r["id"] for r in rows)


def test_copies_in_two_named_groups_leave_the_groups_as_drawn():
    # drug-reviews: one review posted under Implanon and under Etonogestrel; the user's drug groups decide
    rows = _rows(300, 60)
    copied = [*rows, {**rows[1], "id": "copy", "group": "g0", "text": rows[1]["text"] + "!"}]
    before = split_rows([*rows, {**rows[1], "id": "copy", "group": "g0", "text": "unique words"}], (0.8, 0.1, 0.1),
                        group_field="group", seed=1, join_copies=True)
    after = split_rows(copied, (0.8, 0.1, 0.1), group_field="group", seed=1, join_copies=True)
    ids = lambda r: {k: [x["id"] for x in v] for k, v in r.splits.items()}  # noqa: E731
    assert ids(before) == ids(after)


def test_data_without_copies_splits_as_before_copies_were_joined():
    # the assignment of unique rows is what it was when a unit was a group or a row (fingerprints of old runs hold)
    rows = _rows(300, 60)
    ids = lambda r: {k: [x["id"] for x in v] for k, v in r.splits.items()}  # noqa: E731
    assert ids(split_rows(rows, (0.8, 0.1, 0.1), group_field="group", seed=1, join_copies=True))["test"][:6] == \
        ["23", "83", "143", "203", "263", "19"]


def test_deterministic_and_seed_sensitive():
    rows = _rows(300, 60)
    a = split_rows(rows, (0.8, 0.1, 0.1), group_field="group", seed=1)
    b = split_rows(rows, (0.8, 0.1, 0.1), group_field="group", seed=1)
    c = split_rows(rows, (0.8, 0.1, 0.1), group_field="group", seed=2)
    ids = lambda r: {k: [x["id"] for x in v] for k, v in r.splits.items()}  # noqa: E731
    assert ids(a) == ids(b) and ids(a) != ids(c)


def test_sizes_and_stratification():
    rows = _rows(1000, 1000, labels="aaaaaaabbc")  # 70/20/10 labels, every row its own group
    result = split_rows(rows, (0.8, 0.1, 0.1), stratify=True, group_field="group")
    assert {k: len(v) for k, v in result.splits.items()} == {"train": 800, "validation": 100, "test": 100}
    for part in result.splits.values():
        share = Counter(r["label"] for r in part)
        n = len(part)
        assert abs(share["a"] / n - 0.7) <= 0.011 and abs(share["c"] / n - 0.1) <= 0.011


def test_synthetic_rows_never_enter_evaluation_splits():
    rows = _rows(200, 40)
    augmented = augment_rows(rows, ops=("swap",), max_share=0.5, seed=0).rows
    result = split_rows(augmented, (0.6, 0.2, 0.2), group_field="group", seed=0)
    assert not any(r.get("synthetic") for name in ("validation", "test") for r in result.splits[name])
    train_ids = {r["id"] for r in result.splits["train"] if not r.get("synthetic")}
    assert all(r["parent_id"] in train_ids for r in result.splits["train"] if r.get("synthetic"))
    assert result.dropped_synthetic and all(r["parent_id"] not in train_ids for r in result.dropped_synthetic)


def test_fingerprint_detects_contamination():
    rows = _rows(50, 50)
    fp = fingerprint(rows[:10])
    training = rows[10:] + [{"id": "copy", "text": rows[3]["text"].upper() + "!"}]
    assert contamination(training, fp) == ["copy"] and fp["rows"] == 10


def test_ratios_are_validated():
    assert parse_ratios("0.7,0.3") == (0.7, 0.3)
    for bad in ("0.5,0.4", "1,0", "0.2,0.2,0.2,0.4"):
        with pytest.raises(ValueError):
            parse_ratios(bad)


def test_augmentation_flags_parents_and_caps():
    rows = _rows(100, 100)
    result = augment_rows(rows, ops=("swap", "delete"), per_row=2, max_share=0.2, seed=0)
    synthetic = [r for r in result.rows if r.get("synthetic")]
    assert result.real == 100 and len(synthetic) == 25 and result.share == pytest.approx(0.2)
    uncapped = augment_rows(rows, ops=("swap", "delete"), per_row=2, max_share=0.99, seed=0)
    assert result.capped == uncapped.synthetic - 25 > 200  # the cap, not a shortage, limited the output
    parents = {r["id"]: r for r in rows}
    for r in synthetic:
        parent = parents[r["parent_id"]]
        assert r["label"] == parent["label"] and r["group"] == parent["group"] and r["text"] != parent["text"]
        assert r["augmentation"] in ("swap", "delete") and r["id"].startswith(parent["id"] + "~")


def test_eda_operations():
    import random

    rng = random.Random(0)
    glossary = {"pain": ["ache", "soreness"]}
    assert eda("the pain went away", "synonym", rng, 0.5, glossary) in ("the ache went away", "the soreness went away")
    swapped = eda("one two three four", "swap", rng, 0.25, {})
    assert sorted(swapped.split()) == ["four", "one", "three", "two"]
    assert eda("pain", "swap", rng, 0.5, {}) is None  # too short to change
    inserted = eda("the pain went away", "insert", rng, 0.25, glossary)
    assert len(inserted.split()) == 5


def test_templates_fill_slots():
    import random

    spec = {"slots": {"drug": ["A", "B"], "effect": ["rash", "nausea"]},
            "templates": [{"text": "{drug} gave me {effect}.", "label": "negative"}], "n": 3}
    rows = from_templates(spec, random.Random(0))
    assert len(rows) == 3 and all(r["label"] == "negative" and r["augmentation"] == "template" for r in rows)
    assert len({r["text"] for r in rows}) == 3


def test_cli_chain_records_lineage_and_refuses_to_augment_test(tmp_path, capsys):
    rows = _rows(120, 30)
    rows.append(dict(rows[5], id="dup"))
    src = tmp_path / "raw.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert main(["data", "dedup", str(src), "--out", str(tmp_path / "d.jsonl"), "--licence", "CC-BY-4.0",
                 "--consent", "patients consented to research use"]) == 0
    assert main(["data", "split", str(tmp_path / "d.jsonl"), "--out-dir", str(tmp_path / "s"), "--stratify",
                 "--group-field", "group", "--seed", "3"]) == 0
    assert main(["data", "augment", str(tmp_path / "s" / "train.jsonl"), "--out", str(tmp_path / "aug.jsonl")]) == 0
    report = lineage_report(tmp_path / "aug.jsonl")
    manifest = report["manifest"]
    assert report["unchanged"] and [s["step"] for s in manifest["lineage"]] == ["dedup", "split", "augment"]
    assert manifest["sources"][0]["licence"] == "CC-BY-4.0" and "consented" in manifest["sources"][0]["consent"]
    dedup_step = manifest["lineage"][0]
    assert dedup_step["rows_in"] == 121 and dedup_step["outputs"]["removed"]["rows"] == 1
    assert manifest["lineage"][1]["params"] == {"ratios": [0.8, 0.1, 0.1], "stratify": True, "group_field": "group",
                                                "seed": 3}
    fp = json.loads((tmp_path / "s" / "test.fingerprint.json").read_text())
    assert fp["rows"] == len((tmp_path / "s" / "test.jsonl").read_text().splitlines())
    capsys.readouterr()
    assert main(["data", "lineage", str(tmp_path / "aug.jsonl")]) == 0
    printed = capsys.readouterr().out
    assert "1. dedup" in printed and "3. augment" in printed and "licence=CC-BY-4.0" in printed
    (tmp_path / "aug.jsonl").write_text("tampered\n")
    assert lineage_report(tmp_path / "aug.jsonl")["unchanged"] is False
    assert main(["data", "augment", str(tmp_path / "s" / "test.jsonl"), "--out", str(tmp_path / "x.jsonl")]) == 1
    assert "never enter evaluation data" in capsys.readouterr().err


def test_paraphrase_rows_are_flagged_and_blank_ones_dropped(tiny_llama_dir):
    from nichetune.infer.paraphrase import lm_paraphraser

    rows = [{"id": "1", "text": "the kernel schedules processes", "label": "os"},
            {"id": "2", "text": "the drug helped", "label": "med"}]
    stub = {"the kernel schedules processes": "processes are scheduled by the kernel", "the drug helped": "  "}
    result = augment_rows(rows, ops=("paraphrase",), max_share=0.5, paraphrase=stub.get)
    (child,) = [r for r in result.rows if r.get("synthetic")]  # the blank paraphrase is not a row
    assert child == {"text": "processes are scheduled by the kernel", "label": "os", "id": "1~paraphrase0",
                     "synthetic": True, "parent_id": "1", "augmentation": "paraphrase"}
    # the tiny random LM only emits special tokens: its empty paraphrases must not become rows
    paraphrase = lm_paraphraser(str(tiny_llama_dir), max_new_tokens=6)
    assert paraphrase(rows[0]["text"]) == ""
    assert augment_rows(rows, ops=("paraphrase",), max_share=0.5, paraphrase=paraphrase).synthetic == 0


def test_cli_split_honours_a_custom_group_field(tmp_path):
    rows = [{"id": str(i), "text": f"review {i}", "label": "ab"[i % 2], "patient": f"p{i % 9}"} for i in range(90)]
    (tmp_path / "raw.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    assert main(["data", "split", str(tmp_path / "raw.jsonl"), "--out-dir", str(tmp_path / "s"),
                 "--group-field", "patient", "--ratios", "0.6,0.2,0.2"]) == 0
    seen: dict[str, set] = {}
    for name in ("train", "validation", "test"):
        for line in (tmp_path / "s" / f"{name}.jsonl").read_text().splitlines():
            seen.setdefault(json.loads(line)["group"], set()).add(name)
    assert len(seen) == 9 and all(len(s) == 1 for s in seen.values())


def test_first_per_label_takes_k_of_each_label_in_the_given_order():
    from nichetune.data.split import first_per_label

    labels = ["b", "a", "b", "c", "a", "b", "a"]
    order = [6, 5, 4, 3, 2, 1, 0]
    assert first_per_label(labels, 2, order) == [6, 4, 5, 2, 3]  # a: 6, 4; b: 5, 2; c has one row: 3
    assert first_per_label(labels, 2, order, skip={6, 4, 5, 2, 3}) == [1, 0]  # what is left: a: 1; b: 0


def test_cli_split_keeps_copies_together_for_labels_and_splits_repeated_conversations_like_any_row(tmp_path):
    import sys

    sys.path.insert(0, str(Path(__file__).parent))
    from tiny_data import chat_rows

    # 12 texts, each 5 times ("Review 3!" / "review 3"): 12 units for a classifier, 60 rows for sft
    rows = [{"id": str(i), "text": f"Review {i % 12}!" if i % 2 else f"review {i % 12}", "label": "ab"[i % 12 % 2]}
            for i in range(60)]
    (tmp_path / "cls.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["data", "split", str(tmp_path / "cls.jsonl"), "--out-dir", str(tmp_path / "c"),
                 "--ratios", "0.6,0.2,0.2"]) == 0
    homes: dict[str, set] = {}
    for name in ("train", "validation", "test"):
        for line in (tmp_path / "c" / f"{name}.jsonl").read_text().splitlines():
            homes.setdefault(json.loads(line)["text"].lower().rstrip("!"), set()).add(name)
    assert len(homes) == 12 and all(len(s) == 1 for s in homes.values())
    # two conversations repeated 24 times each (fixed answers): every split gets some of both
    write = tmp_path / "sft.jsonl"
    write.write_text("".join(json.dumps(r) + "\n" for r in chat_rows(48)))
    assert main(["data", "split", str(write), "--task", "sft", "--out-dir", str(tmp_path / "s"),
                 "--ratios", "0.5,0.25,0.25"]) == 0
    for name in ("train", "validation", "test"):
        terms = {json.loads(line)["messages"][0]["content"] for line in
                 (tmp_path / "s" / f"{name}.jsonl").read_text().splitlines()}
        assert len(terms) == 2, name

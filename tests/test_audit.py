import json
import random
from html.parser import HTMLParser

import pytest

from nichetune.cli import main
from nichetune.data.audit import audit_dataset
from nichetune.data.pii.detectors import STRUCTURED_TYPES
from pii_corpus import PLAIN, WITH_CONTEXT

VOCAB = [f"term{i}" for i in range(3000)]


def _text(rng, n=25):
    return " ".join(rng.choice(VOCAB) for _ in range(n))


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A train/test pair with known duplicates, near duplicates, conflicts, leaks and PII."""
    rng = random.Random(7)
    folder = tmp_path_factory.mktemp("planted")
    train = [{"id": f"t{i}", "text": _text(rng), "label": rng.choice(["a", "b"]), "group": f"g{i}"} for i in range(60)]

    def near(text):
        words = text.split()
        words[12] = "changedword"  # 1 of 25 words: Jaccard 20/26 = 0.77 on word trigrams
        return " ".join(words)

    # 3 exact clusters (one with conflicting labels), 2 near clusters (one conflicting)
    train += [{"id": "x1", "text": train[0]["text"].upper() + " !", "label": train[0]["label"], "group": "gx1"},
              {"id": "x2", "text": train[1]["text"], "label": "b" if train[1]["label"] == "a" else "a", "group": "gx2"},
              {"id": "x3a", "text": train[2]["text"], "label": train[2]["label"], "group": "gx3"},
              {"id": "x3b", "text": "  " + train[2]["text"].replace(" ", "  "), "label": train[2]["label"],
               "group": "gx4"},
              {"id": "n1", "text": near(train[3]["text"]), "label": train[3]["label"], "group": "gn1"},
              {"id": "n2", "text": near(train[4]["text"]), "label": "b" if train[4]["label"] == "a" else "a",
               "group": "gn2"}]
    # PII: one value of every structured type, each in its own otherwise unique row
    pii_rng = random.Random(3)
    for k, t in enumerate(STRUCTURED_TYPES):
        value = " ".join(WITH_CONTEXT[t](pii_rng)) if t in WITH_CONTEXT else PLAIN[t](pii_rng)
        train.append({"id": f"p{k}", "text": f"{_text(rng, 10)} {value} .", "label": "a", "group": f"gp{k}"})
    test = [{"id": f"s{i}", "text": _text(rng), "label": "a", "group": f"h{i}"} for i in range(20)]
    test += [{"id": "le1", "text": train[10]["text"], "label": "a", "group": "hl1"},
             {"id": "le2", "text": train[11]["text"].lower(), "label": "a", "group": "hl2"},
             {"id": "ln1", "text": near(train[12]["text"]), "label": "a", "group": "hl3"},
             {"id": "lg1", "text": _text(rng), "label": "a", "group": "g20"},
             {"id": "lg2", "text": _text(rng), "label": "a", "group": "g21"}]
    for name, rows in (("train", train), ("test", test)):
        (folder / f"{name}.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return folder


def test_audit_lists_every_planted_case(planted):
    report = audit_dataset(planted / "train.jsonl", tests=[planted / "test.jsonl"], near_threshold=0.7)
    dup = report["duplicates"]
    clusters = {tuple(sorted(c["ids"])): c["kind"] for c in dup["clusters"]}
    assert clusters == {("t0", "x1"): "exact", ("t1", "x2"): "exact", ("t2", "x3a", "x3b"): "exact",
                        ("n1", "t3"): "near", ("n2", "t4"): "near"}
    assert {tuple(sorted(c["ids"])) for c in dup["conflicting_label_clusters"]} == {("t1", "x2"), ("n2", "t4")}
    assert dup["redundant_rows"] == 6
    leak = report["leakage"]["test.jsonl"]
    assert sorted((e["train_id"], e["other_id"]) for e in leak["exact"]) == [("t10", "le1"), ("t11", "le2")]
    assert [(e["train_id"], e["other_id"]) for e in leak["near"]] == [("t12", "ln1")]
    assert leak["shared_groups"] == {"g20": ["lg1"], "g21": ["lg2"]} and leak["leaked_rows"] == 5
    found = {t: v["findings"] for t, v in report["pii"]["by_type"].items()}
    assert found == dict.fromkeys(STRUCTURED_TYPES, 1)
    assert report["pii"]["rows_with_pii"] == len(STRUCTURED_TYPES)
    assert any("leak" in w for w in report["warnings"]) and any("conflicting" in w for w in report["warnings"])


def test_overview_and_small_data_warnings(tmp_path):
    rows = [{"text": f"text number {i} " * 3, "label": "big" if i < 60 else ("mid" if i < 80 else "tiny")}
            for i in range(85)]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    report = audit_dataset(tmp_path / "d.jsonl", max_length=6)
    ov = report["overview"]
    assert ov["labels"] == {"big": 60, "mid": 20, "tiny": 5} and ov["imbalance_ratio"] == 12.0
    assert any("few-shot" in w and "tiny" in w for w in ov["warnings"])
    assert any("small classes" in w and "mid" in w for w in ov["warnings"])
    lengths = report["lengths"]
    assert lengths["unit"] == "words" and lengths["max"] == 9 and lengths["truncated_share"] == 1.0


def test_tokenizer_lengths_and_jargon(tmp_path, tiny_bert_dir):
    rows = [{"text": "the compiler translates source code", "label": "x"},
            {"text": "the kernel schedules zorblaxification", "label": "y"}]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    report = audit_dataset(tmp_path / "d.jsonl", tokenizer=str(tiny_bert_dir))
    assert report["lengths"]["unit"] == "tokens"
    assert report["lengths"]["max"] == 7 and report["lengths"]["min"] == 6  # [CLS] + words + [SEP]; unknown = [UNK]
    assert report["vocabulary"]["jargon_terms"] == []  # word-level tokenizer: nothing shatters


def test_drug_reviews_audit_cleanly_with_condition_slices(tmp_path):
    assert main(["data", "export", "drug-reviews", "--out", str(tmp_path / "all.jsonl")]) == 0
    rows = [json.loads(x) for x in (tmp_path / "all.jsonl").read_text().splitlines()]
    for split in ("train", "test"):
        (tmp_path / f"{split}.jsonl").write_text(
            "\n".join(json.dumps(r) for r in rows if r["original_split"] == split) + "\n")
    rc = main(["data", "audit", str(tmp_path / "train.jsonl"), "--test", str(tmp_path / "test.jsonl"),
               "--slice-field", "condition", "--out", str(tmp_path / "a.json"), "--html", str(tmp_path / "a.html")])
    assert rc == 0
    report = json.loads((tmp_path / "a.json").read_text())
    assert report["validation"]["quarantined"] == 0 and report["overview"]["rows"] == 600
    condition = report["slices"]["condition"]
    # 149 distinct: the scraped "N</span> users found this comment helpful." values count as (unknown)
    assert condition["values"]["Birth Control"] == 117 and condition["distinct"] == 149
    leak = report["leakage"]["test.jsonl"]
    # the original UCI split shares drugs (groups) between train and test, and one review verbatim
    assert len(leak["exact"]) == 1 and len(leak["shared_groups"]) > 50
    page = (tmp_path / "a.html").read_text()
    for heading in ("Warnings", "Overview", "Lengths", "Duplicates", "Leakage", "PII", "Vocabulary", "Slices"):
        assert f">{heading}</h2>" in page

    class Checker(HTMLParser):
        def __init__(self):
            super().__init__()
            self.svgs = 0

        def handle_starttag(self, tag, attrs):
            self.svgs += tag == "svg"

    checker = Checker()
    checker.feed(page)
    assert checker.svgs >= 3  # label, length and slice charts


def test_audit_page_renders_in_a_real_browser(tmp_path, planted, chromium):
    assert main(["data", "audit", str(planted / "train.jsonl"), "--test", str(planted / "test.jsonl"),
                 "--out", str(tmp_path / "a.json"), "--html", str(tmp_path / "a.html")]) == 0
    dom = chromium(tmp_path / "a.html")
    assert "train vs test.jsonl: 5 leaked rows" in dom and "[EMAIL:" in dom
    assert dom.count("<svg") >= 2


def test_audit_finds_annotator_columns_and_matches_sklearn(tmp_path):
    from sklearn.metrics import cohen_kappa_score

    rng = random.Random(5)
    rows = []
    for i in range(80):
        a = rng.choice(["pos", "neg", "neu"])
        b = a if rng.random() < 0.75 else rng.choice(["pos", "neg", "neu"])
        rows.append({"id": str(i), "text": _text(rng, 8), "label": a, "label_a": a, "label_b": b})
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    ag = audit_dataset(tmp_path / "d.jsonl")["agreement"]
    assert ag["columns"] == ["label_a", "label_b"]
    assert ag["cohen_kappa"] == pytest.approx(cohen_kappa_score([r["label_a"] for r in rows],
                                                                [r["label_b"] for r in rows]), abs=1e-4)
    assert ag["disagreeing_ids"] == [r["id"] for r in rows if r["label_a"] != r["label_b"]]

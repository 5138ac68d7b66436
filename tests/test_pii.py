import json
import os
import stat

import pytest

from nichetune.cli import main
from nichetune.data.pii import PiiDetector, mask_text, pseudonymize_text
from nichetune.data.pii.checksums import iban_valid, luhn_valid
from nichetune.data.pii.detectors import STRUCTURED_TYPES
from nichetune.data.pii.evaluate import score_detector
from nichetune.data.pii.transform import surrogate
from nichetune.data.pii.vault import PiiVault, load_or_create_key
from nichetune.errors import NichetuneError
from pii_corpus import DISTRACTORS, make_corpus

KEY = b"k" * 32


@pytest.mark.parametrize("seed", [0, 1])
def test_recall_floor_on_the_gold_corpus(seed):
    scores = score_detector(PiiDetector(), make_corpus(1500, seed=seed))
    assert set(STRUCTURED_TYPES) <= set(scores)
    for t in STRUCTURED_TYPES:
        assert scores[t]["support"] >= 100, t
        assert scores[t]["recall"] >= 0.98, (t, scores[t])
        assert scores[t]["precision"] >= 0.95, (t, scores[t])


def test_distractors_are_not_pii():
    detector = PiiDetector()
    for text in DISTRACTORS:
        assert detector.find(f"Patient reports {text} today.") == [], text


@pytest.mark.parametrize("action", ["mask", "pseudonymize"])
def test_no_gold_value_survives(action):
    detector = PiiDetector()
    for text, gold in make_corpus(800, seed=2):
        found = detector.find(text)
        out = mask_text(text, found) if action == "mask" else pseudonymize_text(text, found, KEY)
        for _, start, end in gold:
            assert text[start:end] not in out, (action, text[start:end], out)


def test_pseudonyms_are_consistent_per_key_and_typed():
    a = surrogate("jane@example.com", "EMAIL", KEY)
    assert a == surrogate(" jane@example.com ", "EMAIL", KEY) and a.startswith("[EMAIL_")
    assert a != surrogate("Jane@Example.com", "EMAIL", KEY)  # case is kept, so a vault reverses it exactly
    assert a != surrogate("jane@example.com", "EMAIL", b"other-key" * 4)
    assert a != surrogate("john@example.com", "EMAIL", KEY)
    text = "mail jane@example.com, again jane@example.com"
    out = pseudonymize_text(text, PiiDetector().find(text), KEY)
    assert out == f"mail {a}, again {a}"
    assert PiiDetector().find(out) == []  # surrogates are not themselves detected as PII


def test_checksums():
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert iban_valid("GB82 WEST 1234 5698 7654 32") and iban_valid("DE89370400440532013000")
    assert not iban_valid("GB82 WEST 1234 5698 7654 33")


def test_custom_pattern_and_type_selection():
    detector = PiiDetector(types=["EMAIL"], custom={"HOSPITAL_ID": r"\bH(\d{7})\b"})
    found = detector.find("id H1234567, mail a@b.co, call +44 20 7946 0958")
    assert [(f.type, f.value) for f in found] == [("HOSPITAL_ID", "1234567"), ("EMAIL", "a@b.co")]
    with pytest.raises(ValueError, match="unknown PII types"):
        PiiDetector(types=["FINGERPRINT"])


def test_key_and_vault_are_owner_only_and_reidentify(tmp_path, monkeypatch):
    monkeypatch.delenv("NICHETUNE_PII_KEY", raising=False)
    key = load_or_create_key(tmp_path / "proj" / ".nichetune" / "pii.key")
    assert stat.S_IMODE(os.stat(tmp_path / "proj" / ".nichetune" / "pii.key").st_mode) == 0o600
    assert load_or_create_key(tmp_path / "proj" / ".nichetune" / "pii.key") == key
    vault = PiiVault(tmp_path / "secure" / "vault.sqlite")
    assert stat.S_IMODE(os.stat(tmp_path / "secure" / "vault.sqlite").st_mode) == 0o600
    text = "Call +1 415 555 0132 or mail a.b@example.org"
    out = pseudonymize_text(text, PiiDetector().find(text), key, vault.record)
    assert vault.reidentify(out) == text
    vault.close()
    with pytest.raises(NichetuneError, match="same folder"):
        PiiVault(tmp_path / "data" / "v.sqlite", data_dir=tmp_path / "data")


def test_cli_pseudonymize_then_reidentify_round_trip(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    rows = [{"text": "Reach me at jane.doe@example.com or +44 20 7946 0958.", "label": "a"},
            {"text": "No personal data here.", "label": "b"},
            {"messages": None}]
    (tmp_path / "in.jsonl").write_text("\n".join(json.dumps(r) for r in rows[:2]) + "\n")
    args = ["data", "pii", "in.jsonl", "--task", "classification", "--vault", str(tmp_path / "vault" / "v.sqlite")]
    assert main([*args, "--action", "pseudonymize", "--out", "out/p.jsonl"]) == 0
    pseudo = (tmp_path / "out" / "p.jsonl").read_text()
    assert "jane.doe" not in pseudo and "7946" not in pseudo and "[EMAIL_" in pseudo
    assert (tmp_path / ".nichetune" / "pii.key").exists()
    manifest = json.loads((tmp_path / "out" / "p.jsonl.manifest.json").read_text())
    assert manifest["lineage"][-1]["step"] == "pii-pseudonymize" and manifest["rows"] == 2
    assert main(["data", "pii", "out/p.jsonl", "--task", "classification", "--vault",
                 str(tmp_path / "vault" / "v.sqlite"), "--action", "reidentify", "--out", "back/r.jsonl"]) == 0
    back = [json.loads(x)["text"] for x in (tmp_path / "back" / "r.jsonl").read_text().splitlines()]
    assert back == [rows[0]["text"], rows[1]["text"]]
    capsys.readouterr()
    assert main(["data", "pii", "in.jsonl", "--task", "classification", "--action", "report", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows_with_pii"] == 1 and set(report["by_type"]) == {"EMAIL", "PHONE"}

"""The prediction log's items and feedback: written off the request path, joined on reading, pruned by age and
count, and exported as training rows that `nichetune data validate` reads."""

from __future__ import annotations

import json

import pytest

from nichetune.cli import main
from nichetune.errors import NichetuneError
from nichetune.monitor.log import export_feedback, prune, read_experiment, read_items
from nichetune.prediction_log import PredictionLog


def _write(log: PredictionLog, request_id: str, texts: list[str], ts: float, **extra) -> None:
    items = [{"text": t, "label": "positive", "confidence": 0.8, "probabilities": {"positive": 0.8, "negative": 0.2},
              "prediction_set": ["positive"], "abstain": False, "slices": {"condition": "acne"}, **extra}
             for t in texts]
    log.write(request_id=request_id, model="reviews", route="/v1/classify", status=200, latency_ms=5.0,
              request={"input": texts}, response=[{"label": "positive"}] * len(texts), items=items, ts=ts)


def test_items_and_feedback_are_joined_pruned_and_exported(tmp_path):
    path = tmp_path / "log.sqlite"
    log = PredictionLog(path, mask_pii=True)
    _write(log, "old", ["an old review"], ts=1000.0)
    _write(log, "r1", ["great cream, mail me at jane.doe@example.com", "it burns"], ts=2_000_000.0,
           version="reviews@2", experiment="ab", arm="reviews", unit="u1")
    log.feedback(request_id="r1", idx=1, label="negative")
    log.feedback(request_id="r1", idx=1, label="neutral")  # the newest feedback counts
    log.feedback(request_id="r1", idx=0, grade=4.5)
    log.experiment("ab", {"a": 0.5, "b": 0.5}, "s1")
    log.close()
    items = read_items(path)
    assert [(i["request_id"], i["idx"]) for i in items] == [("old", 0), ("r1", 0), ("r1", 1)]
    first, second = items[1], items[2]
    assert first["text"] == "great cream, mail me at [EMAIL]"  # masked before it was stored
    assert (first["true_label"], first["grade"]) == (None, 4.5) and second["true_label"] == "neutral"
    assert first["probabilities"] == {"positive": 0.8, "negative": 0.2} and first["set_size"] == 1
    assert (first["version"], first["experiment"], first["arm"], first["unit"]) == ("reviews@2", "ab", "reviews", "u1")
    assert read_items(path, since=1_500_000.0)[0]["request_id"] == "r1"
    assert read_experiment(path, "ab")["arms"] == {"a": 0.5, "b": 0.5}
    with pytest.raises(NichetuneError, match="no experiment 'nope'"):
        read_experiment(path, "nope")

    out = tmp_path / "feedback.jsonl"
    assert export_feedback(path, out) == 1
    assert [json.loads(line) for line in out.read_text().splitlines()] == [
        {"id": "r1-1", "text": "it burns", "label": "neutral", "condition": "acne"}]
    assert main(["data", "validate", str(out), "--task", "classification",
                 "--quarantine", str(tmp_path / "q.jsonl")]) == 0
    assert json.loads((tmp_path / "feedback.jsonl.manifest.json").read_text())["lineage"][-1]["step"] == \
        "feedback-export"

    assert prune(path, keep_days=10, now=2_000_000.0 + 86400) == {"predictions": 1, "items": 1, "feedback": 0}
    assert prune(path, max_items=1) == {"predictions": 1, "items": 1, "feedback": 3}
    assert [(i["request_id"], i["idx"]) for i in read_items(path)] == [("r1", 1)]


def test_a_missing_log_is_a_clear_error(tmp_path):
    with pytest.raises(NichetuneError, match="no prediction log there"):
        read_items(tmp_path / "nope.sqlite")

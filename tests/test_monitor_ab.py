"""A/B reports from a real prediction log (SQLite) with planted answers: a real difference stops the test with
the right winner, equal arms keep it running, a broken split is caught, and the winner's version is promoted."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nichetune.cli import main
from nichetune.errors import NichetuneError
from nichetune.monitor.ab import ab_report, promote
from nichetune.prediction_log import PredictionLog


def _log(path, *, accuracy: dict[str, float], units: dict[str, int], days: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    log = PredictionLog(path, mask_pii=False)
    log.experiment("ab", {"champion": 0.5, "challenger": 0.5}, "s")
    n = 0
    for day in range(days):
        for arm, count in units.items():
            for u in range(count):
                n += 1
                right = rng.random() < accuracy[arm]
                log.write(request_id=f"r{n}", model=arm, route="/v1/classify", status=200, latency_ms=3.0,
                          request={}, response=[], ts=day * 86400 + u * 10.0,
                          items=[{"text": "t", "label": "positive", "confidence": 0.8,
                                  "probabilities": {"positive": 0.8}, "experiment": "ab", "arm": arm,
                                  "unit": f"{arm}-{day}-{u}", "version": {"champion": "reviews@1",
                                                                          "challenger": "reviews@2"}[arm]}])
                log.feedback(request_id=f"r{n}", label="positive" if right else "negative")
    log.close()
    return path


class _Registry:  # records the alias move promote asks for
    def __init__(self):
        self.moves = []

    def set_alias(self, ref, alias, **kw):
        self.moves.append((ref, alias, kw["action"]))
        return {"name": ref.split("@")[0], "from_version": 1, "to_version": int(ref.split("@")[1])}


def test_a_real_difference_stops_the_test_and_the_winner_is_promoted(tmp_path, capsys):
    path = _log(tmp_path / "log.sqlite", accuracy={"champion": 0.70, "challenger": 0.85},
                units={"champion": 60, "challenger": 60})
    report = ab_report(path, "ab", control="champion")
    assert report["stats"]["challenger"]["labelled"] == 720 and report["srm_p_value"] > 0.5
    assert len(report["looks"]) == 12 and report["decision"] == "stop: promote challenger"
    assert report["winner"] == "challenger" and report["sentence"].startswith("challenger is better than champion")
    last = report["looks"][-1]
    assert last["ci_low"] > 0 and last["difference"] == pytest.approx(
        report["stats"]["challenger"]["accuracy"] - report["stats"]["champion"]["accuracy"])
    registry = _Registry()
    promote(report, registry)
    assert registry.moves == [("reviews@2", "champion", "promote")]
    assert main(["ab", "report", "ab", "--log", str(path), "--control", "champion", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["winner"] == "challenger"


def test_equal_arms_keep_the_test_running_and_nothing_is_promoted(tmp_path):
    path = _log(tmp_path / "log.sqlite", accuracy={"champion": 0.8, "challenger": 0.8},
                units={"champion": 40, "challenger": 40}, seed=3)
    report = ab_report(path, "ab", control="champion")
    assert report["decision"] == "continue" and report["winner"] is None and report["p_value"] > 0.05
    with pytest.raises(NichetuneError, match="has no winner"):
        promote(report, _Registry())
    stopped = ab_report(path, "ab", control="champion", max_labelled=400)
    assert stopped["decision"] == "stop: no difference" and "keep champion" in stopped["sentence"]


def test_a_broken_split_is_reported_before_any_comparison(tmp_path):
    path = _log(tmp_path / "log.sqlite", accuracy={"champion": 0.7, "challenger": 0.9},
                units={"champion": 60, "challenger": 30})
    report = ab_report(path, "ab", control="champion")
    assert report["srm_p_value"] < 0.001 and report["decision"] == "stop: the split is broken"
    assert report["winner"] is None and report["sentence"].startswith("Sample ratio mismatch")

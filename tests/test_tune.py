"""`nichetune tune`: Optuna search on a tiny classifier; test split untouched, resumable, shared by two workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytest.importorskip("optuna")

from nichetune.cli import main  # noqa: E402
from nichetune.config.recipe import load_recipe  # noqa: E402
from tiny_data import review_rows, write_jsonl  # noqa: E402


def _recipe(tmp_path: Path, model: str, trials: int = 3) -> Path:
    write_jsonl(tmp_path / "d.jsonl", review_rows(120, seed=1, own=2, noise=4))
    recipe = {
        "task": "classification", "output_dir": str(tmp_path / "run"), "model": {"name": model, "max_length": 32},
        "data": {"train": str(tmp_path / "d.jsonl"), "split": {"ratios": [0.6, 0.2, 0.2], "group_field": None}},
        "method": {"name": "lora", "r": 4, "target_modules": ["query", "value"]},
        "train": {"epochs": 2, "batch_size": 8, "lr": 1e-2, "precision": "fp32", "eval_every": 4},
        "tune": {"trials": trials, "startup_trials": 1, "heartbeat_s": 3, "space": {
            "train.lr": {"type": "float", "low": 1e-3, "high": 5e-2, "log": True},
            "method.name": {"type": "categorical", "choices": ["lora", "freeze"]},
            "method.r": {"type": "categorical", "choices": [2, 4]},
            "method.layers": {"type": "int", "low": 0, "high": 1}}}}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_search_never_scores_the_test_split_and_its_best_recipe_retrains_to_the_same_metric(
        tmp_path, tiny_bert_dir, monkeypatch, capsys):
    import nichetune.train.run as run_module

    scored_test = []
    original = run_module.evaluate
    monkeypatch.setattr(run_module, "evaluate", lambda *a, **k: scored_test.append(1) or original(*a, **k))
    path = _recipe(tmp_path, str(tiny_bert_dir))
    assert main(["tune", str(path)]) == 0
    result = json.loads((tmp_path / "run-tune" / "result.json").read_text())
    assert f"best recipe: {result['best_recipe']}" in capsys.readouterr().out
    assert scored_test == []  # run.evaluate only ever scores the test split
    assert len(result["trials"]) == 3 and {t["state"] for t in result["trials"]} <= {"complete", "pruned"}
    for t in result["trials"]:
        manifest = json.loads((Path(t["run_dir"]) / "manifest.json").read_text()) if t["state"] == "complete" else None
        if manifest:
            assert manifest["result"]["test"] is None
            # a method switch starts the method section afresh: freeze trials carry no LoRA rank
            assert ("method.r" in t and t["method.r"] is not None) == (t["method.name"] == "lora")
    best = load_recipe(result["best_recipe"])
    assert best.eval.test and best.tune is None and best.output_dir.endswith("run-best")
    monkeypatch.setattr(run_module, "evaluate", original)
    assert main(["train", result["best_recipe"]]) == 0
    retrained = json.loads((Path(best.output_dir) / "manifest.json").read_text())["result"]["validation"]
    assert retrained[result["metric"]] == pytest.approx(result["best_value"], abs=1e-9)
    page = Path(result["page"]).read_text()
    assert "Optimisation history" in page and "Trials" in page


def test_a_killed_search_resumes_and_two_workers_share_one_study(tmp_path, tiny_bert_dir):
    path = _recipe(tmp_path, str(tiny_bert_dir), trials=4)
    # one thread each: two workers on two cores must not starve each other's heartbeat thread
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent), "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "nichetune", "tune", str(path)]
    # a worker killed (SIGKILL) in the middle of its first trial's training
    killer = ("import sys; from nichetune.config.recipe import load_recipe; from nichetune.tune.search import "
              "run_search; from tiny_data import kill_at; run_search(load_recipe(sys.argv[1]), on_step=kill_at(3))")
    killed = subprocess.run([sys.executable, "-c", killer, str(path)], env=env, capture_output=True, text=True)
    assert killed.returncode == -9
    import time

    time.sleep(7)  # past the 2 x heartbeat grace, so the dead trial counts as failed and is retried
    workers = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    outs = [w.communicate(timeout=900) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    import optuna

    study = optuna.load_study(study_name="run", storage=f"sqlite:///{tmp_path / 'run-tune' / 'study.db'}")
    states = [t.state.name for t in study.trials]
    finished = [t for t in study.trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert states[0] == "FAIL" and len(finished) >= 4  # the killed trial failed; the study still reached 4
    assert len({t.user_attrs["worker"] for t in finished}) == 2  # both workers ran trials of the one study


def test_a_trial_reaped_by_another_worker_does_not_end_this_worker(tmp_path, tiny_bert_dir, monkeypatch):
    """Under load a worker's heartbeat can come late; another worker then fails its running trial and
    retries it, and this worker's own tell is refused. The worker must carry on with the study."""
    import optuna

    from nichetune.config.recipe import load_recipe
    from nichetune.tune.search import run_search

    real = optuna.study.Study.optimize
    calls = []

    def optimize_once_reaped(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            try:
                raise optuna.exceptions.UpdateFinishedTrialError("Trial#0 has already finished")
            except optuna.exceptions.UpdateFinishedTrialError:
                raise ValueError("Cannot tell a FAIL trial.") from None
        return real(self, *args, **kwargs)

    monkeypatch.setattr(optuna.study.Study, "optimize", optimize_once_reaped)
    said = []
    result = run_search(load_recipe(_recipe(tmp_path, str(tiny_bert_dir), trials=2)), progress=said.append)
    assert len(calls) == 2 and any("marked failed by another worker" in s for s in said)
    assert sum(t["state"] in ("complete", "pruned") for t in result["trials"]) == 2  # pruning depends on the sampler


def test_a_trial_is_not_pruned_before_it_has_reported_prune_after_evaluations():
    """Every evaluation reaches the study; the pruner may stop a trial only from its (prune_after + 1)-th on."""
    from nichetune.tune.search import pruning_report

    class Pruned(Exception):
        pass

    class Trial:  # a pruner that would stop every trial at every step
        def __init__(self):
            self.reports = []

        def report(self, value, step):
            self.reports.append((step, value))

        def should_prune(self):
            return True

    for prune_after in (0, 1, 3):
        trial = Trial()
        report = pruning_report(trial, "macro_f1", prune_after, Pruned)
        for k in range(prune_after):
            report(10 * (k + 1), {"macro_f1": 0.1 * k})
        with pytest.raises(Pruned, match=f"pruned at step {10 * (prune_after + 1)}: macro_f1 0.5"):
            report(10 * (prune_after + 1), {"macro_f1": 0.5})
        assert [s for s, _ in trial.reports] == [10 * (k + 1) for k in range(prune_after + 1)]


def test_a_grid_study_runs_every_combination_once_and_refuses_ranges(tmp_path, tiny_bert_dir):
    from nichetune.config.recipe import load_recipe
    from nichetune.errors import NichetuneError
    from nichetune.tune.search import run_search

    raw = yaml.safe_load(_recipe(tmp_path, str(tiny_bert_dir)).read_text())
    raw["train"]["epochs"] = 1
    raw["tune"] = {"sampler": "grid", "pruner": "none", "space": {
        "train.lr": {"type": "categorical", "choices": [1e-3, 1e-2]},
        "train.warmup": {"type": "categorical", "choices": [0.0, 0.1]}}}
    result = run_search(load_recipe(data=raw), progress=lambda _: None)  # tune.trials defaults to 20: the grid's 4
    assert sorted((t["train.lr"], t["train.warmup"]) for t in result["trials"]) == [
        (1e-3, 0.0), (1e-3, 0.1), (1e-2, 0.0), (1e-2, 0.1)]
    assert all(t["state"] == "complete" for t in result["trials"])
    for space, words in [({"train.lr": {"type": "float", "low": 1e-4, "high": 1e-2}}, "train.lr are ranges"),
                         ({"method.name": {"type": "categorical", "choices": ["lora", "full"]},
                           "method.r": {"type": "categorical", "choices": [4, 8]}}, "one method's settings")]:
        raw["tune"]["space"] = space
        with pytest.raises(NichetuneError, match=words):
            load_recipe(data=raw)

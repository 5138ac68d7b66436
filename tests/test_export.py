"""`nichetune export`: every format round-trips with a parity report that can fail, a manifest that detects
tampering, ONNX that runs in onnxruntime without torch on any batch size and length, and clear refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nichetune.cli import main
from nichetune.config.recipe import load_recipe
from nichetune.errors import NichetuneError
from nichetune.hashing import MANIFEST_NAME
from nichetune.train.run import train
from tiny_data import chat_rows, review_rows, write_jsonl


def _train(root: Path, model_dir: Path, task: str, method: dict, rows, **sections) -> Path:
    data = write_jsonl(root / f"{task}.jsonl", rows)
    recipe = load_recipe(data={
        "task": task, "output_dir": str(root / f"run-{task}-{method['name']}"),
        "model": {"name": str(model_dir), "max_length": 64}, "data": {"train": str(data)}, "method": method,
        "train": {"epochs": 3, "batch_size": 8, "lr": 2e-2, "precision": "fp32"}} | sections)
    train(recipe)
    return Path(recipe.output_dir)


@pytest.fixture(scope="module")
def cls_run(tmp_path_factory, tiny_bert_dir) -> Path:
    return _train(tmp_path_factory.mktemp("export-cls"), tiny_bert_dir, "classification",
                  {"name": "lora", "r": 4, "target_modules": ["query", "value", "dense"]},
                  review_rows(120, seed=2, own=3, noise=2))


@pytest.fixture(scope="module")
def lm_run(tmp_path_factory) -> Path:
    """A tiny Llama with a byte-level BPE tokenizer, as GGUF's gpt2 tokenizer model holds."""
    from tiny_models import build_tiny_llama

    model = build_tiny_llama(tmp_path_factory.mktemp("tiny-llama-bpe"), bpe=True)
    return _train(tmp_path_factory.mktemp("export-lm"), model, "sft", {"name": "lora", "r": 4}, chat_rows(40))


@pytest.mark.parametrize("fmt", ["merged", "bf16", "int8", "onnx", "onnx-int8"])
def test_each_classifier_export_passes_parity_and_seals_its_folder(cls_run, tmp_path, fmt):
    out = tmp_path / fmt
    assert main(["export", str(cls_run), "--to", fmt, "--out", str(out)]) == 0
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    parity = json.loads((out / "parity.json").read_text())
    assert manifest["kind"] == "nichetune-export" and manifest["status"] == parity["status"] == "passed"
    assert manifest["source"]["run"] == str(cls_run.resolve()) and manifest["tools"]["torch"]
    assert set(manifest["files"]) == {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {
        MANIFEST_NAME}
    assert parity["rows"] == json.loads((cls_run / "manifest.json").read_text())["data"]["rows"]["test"]
    assert parity["change"] >= -0.005 and parity["ci_low"] <= parity["change"] <= parity["ci_high"]
    exact = {"merged": 1e-4, "onnx": 1e-3}  # the same fp32 arithmetic, up to kernel order
    if fmt in exact:
        assert parity["max_logit_diff"] < exact[fmt] and parity["same_prediction"] == 1.0
    assert parity["ran_without_torch"] == fmt.startswith("onnx")
    assert not list(out.parent.glob(".*.partial"))


def test_onnx_axes_are_dynamic_and_match_the_merged_model(cls_run, tmp_path):
    from nichetune.export.onnx import logits_without_torch
    from nichetune.export.registry import FORMATS

    for fmt in ("merged", "onnx"):
        assert main(["export", str(cls_run), "--to", fmt, "--out", str(tmp_path / fmt)]) == 0
    torch_model = FORMATS["merged"].load(tmp_path / "merged", "classification", 64)
    texts = ["the drug helped", "nausea " * 40, "ok", "it was fine but the headache came back at night", "x y"]
    for batch in (texts[:1], texts[1:2], texts):  # batch sizes 1 and 5, lengths 3 to 64 tokens
        expected = torch_model.logits(batch)
        assert np.abs(logits_without_torch(tmp_path / "onnx", batch) - expected).max() < 1e-3


def test_a_broken_export_fails_parity_and_is_marked_failed(cls_run, tmp_path, monkeypatch, capsys):
    """A planted fault: the export's classifier head is scrambled after writing."""
    from safetensors.torch import load_file, save_file

    from nichetune.export import formats

    original = formats.FORMATS["merged"]

    def broken_write(run, folder, max_length):
        original.write(run, folder, max_length)
        weights = load_file(str(folder / "model.safetensors"))
        head = next(k for k in weights if k.startswith("classifier") and k.endswith("weight"))
        weights[head] = weights[head].flip(0)  # the labels' rows swapped: the model now answers wrongly
        save_file(weights, str(folder / "model.safetensors"), metadata={"format": "pt"})

    from dataclasses import replace

    monkeypatch.setitem(formats.FORMATS, "merged", replace(original, write=broken_write))
    out = tmp_path / "broken"
    assert main(["export", str(cls_run), "--to", "merged", "--out", str(out)]) == 1
    assert "export failed parity" in capsys.readouterr().err
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["status"] == "failed" and "dropped by" in manifest["parity"]["reason"]
    assert manifest["parity"]["change"] < -0.005


def test_language_model_exports_and_refusals(lm_run, tmp_path, capsys):
    for fmt in ("merged", "int8", "gguf"):
        assert main(["export", str(lm_run), "--to", fmt, "--out", str(tmp_path / fmt), "--rows", "8"]) == 0
        parity = json.loads((tmp_path / fmt / "parity.json").read_text())
        assert parity["metric"] == "token_accuracy" and parity["status"] == "passed"
        assert parity["perplexity"]["export"] == pytest.approx(parity["perplexity"]["source"], rel=0.02)
    merged = json.loads((tmp_path / "merged" / "parity.json").read_text())
    assert merged["max_logit_diff"] < 1e-3 and merged["change"] == 0.0
    assert merged["greedy"]["same_answers"] == merged["greedy"]["prompts"] == 4  # every test row's question
    # GGUF: f16 weights read back through transformers' GGUF loader, tokenizer rebuilt from the file
    gguf = json.loads((tmp_path / "gguf" / "parity.json").read_text())
    assert gguf["max_logit_diff"] < 0.05 and gguf["greedy"]["same_answers"] == 4
    native = gguf["greedy"]["native_runtime"]  # llama.cpp where installed; this machine has none
    assert native["ran"] or "llama.cpp is not installed" in native["why"]
    assert main(["export", str(lm_run), "--to", "onnx", "--out", str(tmp_path / "onnx")]) == 1
    err = capsys.readouterr().err
    assert "onnx holds classification models" in err and "merged, bf16, int8, gguf" in err
    assert not (tmp_path / "onnx").exists()


def test_language_model_parity_holds_one_rows_logits_per_model_at_a_time(lm_run, tmp_path, monkeypatch):
    """Logits over the vocabulary are large (SmolLM2: 20 MB per 100 positions); parity that kept a split's worth
    for both models was most of an export's peak memory. Each row's logits must be gone when the next one comes."""
    import gc
    import weakref

    import torch

    from nichetune.export import parity

    real, alive, most, rows = parity.scored_rows, [], [0], [0]

    def watched(*args, **kwargs):
        for logits, stats in real(*args, **kwargs):
            gc.collect()
            alive[:] = [ref for ref in alive if ref() is not None]
            most[0] = max(most[0], len(alive))
            alive.append(weakref.ref(logits))
            rows[0] += 1
            yield logits, stats

    monkeypatch.setattr(parity, "scored_rows", watched)
    assert main(["export", str(lm_run), "--to", "merged", "--out", str(tmp_path / "merged"), "--rows", "8"]) == 0
    # inference mode held across the yields of two interleaved generators was left on for the whole process (the
    # demo's next training run then failed: "element 0 of tensors does not require grad")
    assert torch.is_grad_enabled() and not torch.is_inference_mode_enabled()
    report = json.loads((tmp_path / "merged" / "parity.json").read_text())
    assert report["status"] == "passed" and rows[0] >= 2 * report["rows"] >= 8  # both models, and latency runs
    # the pair in hand and the next row being made: a few, however many rows (lists of every row's would hold 7 here)
    assert most[0] <= 3


def test_unmergeable_methods_unknown_formats_and_foreign_folders_are_refused(tmp_path, tiny_bert_dir, cls_run):
    from nichetune.export.export import export_run, read_export

    adapter = _train(tmp_path, tiny_bert_dir, "classification", {"name": "adapter", "bottleneck": 4},
                     review_rows(40, seed=3, own=3, noise=2))
    with pytest.raises(NichetuneError, match="adapter cannot be exported as merged: it adds computation"):
        export_run(adapter, "merged", tmp_path / "m", progress=None)
    with pytest.raises(NichetuneError, match="unknown export format 'tflite'"):
        export_run(cls_run, "tflite", tmp_path / "t", progress=None)
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(NichetuneError, match="not an export folder; nothing was changed"):
        export_run(cls_run, "merged", foreign, progress=None)
    assert (foreign / "notes.txt").read_text() == "keep me"
    out = tmp_path / "ok"
    export_run(cls_run, "bf16", out, progress=None)
    with pytest.raises(NichetuneError, match="already holds an export"):
        export_run(cls_run, "bf16", out, progress=None)
    assert read_export(out, deep=True)["format"] == "bf16"
    (out / "config.json").write_text((out / "config.json").read_text() + " ")
    with pytest.raises(NichetuneError, match="does not match its manifest"):
        read_export(out, deep=True)


def test_an_onnx_export_leaves_none_of_the_models_weights_alive(cls_run, tmp_path, monkeypatch):
    """onnxscript's module-level rewrite rules kept the last graph they matched, weights included: 127 MB of the
    demo's MiniLM stayed resident for the rest of the process."""
    import gc
    import weakref

    from nichetune.export import onnx

    refs = []

    def watched(run):
        model = onnx_merged(run)
        refs.extend(weakref.ref(p) for p in model.parameters())
        return model

    onnx_merged = onnx.merged_model
    monkeypatch.setattr(onnx, "merged_model", watched)
    assert main(["export", str(cls_run), "--to", "onnx", "--out", str(tmp_path / "onnx")]) == 0
    gc.collect()
    assert refs and not [r for r in refs if r() is not None]


def test_merging_for_an_export_folds_the_adapter_into_the_runs_own_weights(cls_run):
    """No second copy of the weights while an export is written (SmolLM2's merged export peaked at 1.80 GB with one,
    1.61 GB without); the merged model still decides exactly as the run did."""
    import torch

    from nichetune.export.merged import merged_model
    from nichetune.run import load_run

    run = load_run(cls_run)
    batch = run.tokenizer(["a great drug, no side effects", "it did nothing for me"], padding=True,
                          return_tensors="pt")
    with torch.no_grad():
        before = run.model(**batch).logits
    storages = {p.untyped_storage().data_ptr() for p in run.model.parameters()}
    merged = merged_model(run)
    with torch.no_grad():
        after = merged(**batch).logits
    assert torch.allclose(before, after, atol=1e-5)
    assert all(p.untyped_storage().data_ptr() in storages for p in merged.parameters())


def test_export_without_to_ships_what_the_recipes_deploy_plan_names(tmp_path, tiny_bert_dir, cls_run, lm_run, capsys):
    """`recommend` writes deploy.quantize and deploy.merge; `export` without --to reads them."""
    from nichetune.export.plan import planned_format
    from nichetune.run.loading import read_run

    def plan(run, **deploy):
        manifest, recipe = read_run(run)
        return (planned_format(manifest, recipe.deploy.model_copy(update=deploy)) or (None,))[0]

    assert plan(cls_run, quantize="int8") == "onnx-int8"  # onnxruntime's int8 kernels: fast on any x86 CPU
    assert plan(lm_run, quantize="int8") == "int8"  # ONNX holds no decoders
    assert plan(cls_run, quantize="bf16") == plan(lm_run, quantize="bf16") == "bf16"
    assert plan(cls_run, merge=True) == plan(lm_run, merge=True) == "merged"
    assert plan(cls_run) is None
    assert main(["export", str(cls_run), "--out", str(tmp_path / "unplanned")]) == 1
    err = capsys.readouterr().err
    assert "plans no export (deploy.quantize: none, deploy.merge: false)" in err
    assert "name a format with --to: merged, bf16, int8, onnx, onnx-int8" in err
    assert not (tmp_path / "unplanned").exists()
    planned = _train(tmp_path, tiny_bert_dir, "classification", {"name": "lora", "r": 4},
                     review_rows(60, seed=4, own=3, noise=2), deploy={"merge": True, "quantize": "int8"})
    assert main(["export", str(planned), "--out", str(tmp_path / "planned")]) == 0
    assert "exporting as onnx-int8: the recipe's deploy plan" in capsys.readouterr().err
    assert json.loads((tmp_path / "planned" / MANIFEST_NAME).read_text())["format"] == "onnx-int8"

"""ONNX exports of encoder classifiers: ``torch.onnx.export(dynamo=True)`` with dynamic batch and sequence
axes, run by onnxruntime; ``onnx-int8`` quantizes the linear layers with onnxruntime's dynamic quantizer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from ..errors import NichetuneError
from ..run.loading import LoadedRun
from .formats import ExportFormat, Runner, register_format
from .merged import merged_model
from .onnx_runtime import SETTINGS, OnnxClassifier

FILE = "model.onnx"


def _refuse_decoders(architectures: list[str]) -> str | None:
    if any(a.endswith("ForCausalLM") for a in architectures):
        return "ONNX export covers encoder classifiers; this classifier's base is a decoder"
    return None


def write_onnx_classifier(model, tokenizer, folder: Path, max_length: int) -> None:
    """Write a torch sequence classifier (fp32, eval) as ``model.onnx`` + tokenizer + settings into ``folder``.

    Raises:
        NichetuneError: the tokenizer has no ``tokenizer.json`` (the ONNX runner needs a fast tokenizer).
    """
    import torch

    from ..truncation import special_ids, truncation_of

    model = model.float().eval()
    sample = tokenizer(["an example text", "a second, longer example text for the trace"], padding=True,
                       return_tensors="pt")
    inputs = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in sample]
    batch = torch.export.Dim("batch", min=1, max=4096)
    sequence = torch.export.Dim("sequence", min=2, max=max(max_length, 8))
    program = torch.onnx.export(model, (), kwargs={k: sample[k] for k in inputs}, dynamo=True,
                                dynamic_shapes={k: {0: batch, 1: sequence} for k in inputs},
                                input_names=inputs, output_names=["logits"], optimize=True, verbose=False)
    program.save(str(folder / FILE))
    del program
    forget_rewrite_matches()
    tokenizer.save_pretrained(folder)
    if not (folder / "tokenizer.json").is_file():
        raise NichetuneError("ONNX export needs a fast tokenizer (tokenizer.json) to run without transformers",
                             hint="use a base model whose tokenizer has a tokenizer.json")
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    settings = {"file": FILE, "inputs": inputs, "labels": labels, "max_length": max_length,
                "pad_id": tokenizer.pad_token_id, "pad_token": tokenizer.pad_token,
                "truncation": truncation_of(tokenizer), "special_ids": special_ids(tokenizer)}
    (folder / SETTINGS).write_text(json.dumps(settings, indent=2) + "\n")


def forget_rewrite_matches() -> None:
    """Drop the graph that onnxscript's rewrite rules keep from their last match.

    ``optimize=True`` runs onnxscript's rewriter, whose rules are module-level objects, and each rule's matcher keeps
    the graph it last visited: the exported model, every weight included, stayed alive for the rest of the process
    (127 MB after exporting the demo's MiniLM classifier, held until the process ended).
    """
    import gc

    try:
        from onnxscript.rewriter._matcher import PatternMatcher
    except ImportError:  # another onnxscript layout: the test of this function says when it needs a new look
        return
    for obj in gc.get_objects():
        if isinstance(obj, PatternMatcher):
            state = vars(obj)
            for name in ("_graph", "_match", "_current_node", "_tracer"):
                if name in state:
                    state[name] = None


def _export_fp32(run: LoadedRun, folder: Path, max_length: int) -> None:
    write_onnx_classifier(merged_model(run), run.tokenizer, folder, max_length)


def _export_int8(run: LoadedRun, folder: Path, max_length: int) -> None:
    import logging

    from onnxruntime.quantization import QuantType, quantize_dynamic

    _export_fp32(run, folder, max_length)
    fp32 = folder / "model.fp32.onnx"
    (folder / FILE).rename(fp32)
    logging.getLogger().setLevel(logging.ERROR)  # the quantizer advises pre-processing on the root logger
    # per-channel weight scales: per-tensor scales cost MiniLM 4 points of macro-F1 on the drug reviews
    quantize_dynamic(str(fp32), str(folder / FILE), weight_type=QuantType.QInt8, per_channel=True)
    fp32.unlink()


def _load(folder: Path, head: str, max_length: int) -> Runner:
    classifier = OnnxClassifier(folder)
    return Runner(logits=classifier.logits)


def logits_without_torch(folder: Path, texts: list[str]) -> np.ndarray:
    """The export's logits computed in a fresh interpreter that imports only onnxruntime and tokenizers.

    Raises:
        NichetuneError: the process failed, or torch was imported there after all.
    """
    code = "from nichetune.export.onnx_runtime import main; raise SystemExit(main())"
    proc = subprocess.run([sys.executable, "-c", code], input=json.dumps({"folder": str(folder), "texts": texts}),
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise NichetuneError(f"the ONNX export did not run in onnxruntime: {tail}",
                             hint="re-export; if it persists, report it with the run")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["torch_imported"]:
        raise NichetuneError("running the ONNX export imported torch", hint="this is a bug: please report it")
    return np.asarray(result["logits"], dtype=np.float64)


HEADS_ONNX = frozenset({"classification"})
ONNX = register_format(ExportFormat("onnx", "merged, ONNX (fp32) for onnxruntime, dynamic batch and length",
                                    HEADS_ONNX, _export_fp32, _load, requires=("onnx", "onnxscript", "onnxruntime"),
                                    refuse=_refuse_decoders, isolated_logits=logits_without_torch,
                                    traces_prior=True))
ONNX_INT8 = register_format(ExportFormat("onnx-int8", "ONNX with int8 linear layers (onnxruntime dynamic "
                                         "quantization)", HEADS_ONNX, _export_int8, _load,
                                         requires=("onnx", "onnxscript", "onnxruntime"), refuse=_refuse_decoders,
                                         isolated_logits=logits_without_torch, traces_prior=True))

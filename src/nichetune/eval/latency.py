"""Latency and footprint of the ways a run can be served, each beside its quality.

Variants: the base model, the tuned model as trained (base + adapter), the adapter merged into
the weights, that merged model in bf16, and the merged model with its linear layers dynamically
quantized to int8 (weights int8 with per-channel scales, activations quantized on the fly; the
output layer and the activation-outlier layers in ``SKIP`` stay fp32). Each variant is
measured in its own fresh process, one after the other, so its peak memory is its own and no
two processes compete for the cores.

Per variant: p50 / p95 / p99 single-request latency, batch throughput, resident memory added by
loading, the process's peak resident memory, size on disk, and quality on the same rows
(accuracy for classifiers, response perplexity for generators).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

from ..errors import NichetuneError

# Llama-style MLP output projections see activation outliers that per-tensor int8 activations
# cannot hold: quantizing them took SmolLM2-135M's perplexity from 22.6 to 66 (27 without them).
SKIP = ("down_proj",)
VARIANTS = ("base", "tuned", "merged", "merged-bf16", "int8-dynamic")


def percentiles(seconds: list[float]) -> dict:
    ms = np.asarray(seconds) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean()), "requests": len(ms)}


def folder_mb(path: Path) -> float:
    path = Path(path)
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 2**20


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    # VmHWM is this address space's high-water mark; ru_maxrss would carry the parent's over fork + exec
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def _base_folder(manifest: dict) -> Path:
    from ..models.resolve import resolve_model

    return Path(resolve_model(manifest["base_model"]["reference"]).path)


def _load(run_dir: Path, variant: str):
    """(model, tokenizer, size on disk in MB, note) for one variant."""
    import torch

    from ..methods.registry import METHODS
    from ..methods.storage import merge_adapted
    from ..models.loading import load_causal_lm, load_encoder
    from ..run.directory import load_run, read_run, weights_folder

    manifest, recipe = read_run(run_dir)
    base_mb = folder_mb(_base_folder(manifest))
    if variant == "base":
        loader = load_encoder if recipe.task == "classification" else load_causal_lm
        model, tok = loader(manifest["base_model"]["reference"], dtype="fp32", device="cpu")
        return model.eval(), tok, base_mb, "the untuned base model"
    model, tok, _, _ = load_run(run_dir, dtype=torch.float32)
    method = METHODS[recipe.method.name]
    weights = run_dir / weights_folder(recipe.method.name)
    if variant == "tuned":
        if method.storage == "model":
            return model, tok, folder_mb(weights), "the whole tuned model"
        return model, tok, base_mb + folder_mb(weights), f"base + {folder_mb(weights):.1f} MB {method.name} adapter"
    if not method.mergeable:
        raise NichetuneError(f"{method.name} cannot be merged", hint="only the base and tuned variants apply")
    merged = merge_adapted(model, recipe.method) if method.storage != "model" else model
    if variant == "merged":
        return merged, tok, _saved_mb(merged), "adapter folded into the weights"
    if variant == "merged-bf16":
        merged = merged.to(torch.bfloat16)
        return merged, tok, _saved_mb(merged), "merged, weights in bf16"
    with warnings.catch_warnings():  # torch.ao's dynamic quantization is deprecated in favour of torchao
        warnings.simplefilter("ignore")
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        # per-channel weight scales; the output layer and SKIP layers stay fp32
        head = merged.get_output_embeddings() if hasattr(merged, "get_output_embeddings") else None
        spec = {name: per_channel_dynamic_qconfig for name, m in merged.named_modules()
                if isinstance(m, torch.nn.Linear) and m is not head and not name.endswith(SKIP)}
        quantized = quantize_dynamic(merged, spec, dtype=torch.qint8)
    buf = io.BytesIO()  # an in-memory byte count: quantized modules only serialise through pickle
    torch.save(quantized.state_dict(), buf)
    return quantized, tok, len(buf.getvalue()) / 2**20, "merged, linear layers int8 per channel (dynamic)"


def _saved_mb(model) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        return folder_mb(Path(tmp))


def _classify_timings(model, tok, texts: list[str], max_length: int, requests: int, batch: int) -> dict:
    import torch

    def forward(items):
        enc = tok(items, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        with torch.inference_mode():
            return model(**enc)

    for t in texts[:3]:
        forward([t])
    single = []
    for t in (texts * (requests // max(1, len(texts)) + 1))[:requests]:
        start = time.perf_counter()
        forward([t])
        single.append(time.perf_counter() - start)
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        forward(texts[i : i + batch])
    return {**percentiles(single), "throughput": len(texts) / (time.perf_counter() - start),
            "throughput_unit": "texts/s", "batch_size": batch}


def _generate_timings(model, tok, prompts: list[str], requests: int, batch: int, new_tokens: int) -> dict:
    import torch

    from ..infer.generate import chat_input_ids

    def run(items: list[str]):
        tok.padding_side = "left"
        rendered = [tok.decode(chat_input_ids(tok, p)[0]) for p in items]
        enc = tok(rendered, padding=True, add_special_tokens=False, return_tensors="pt")
        with torch.inference_mode():
            model.generate(**enc, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False,
                           top_p=None, top_k=None, pad_token_id=tok.pad_token_id)

    run(prompts[:1])
    single = []
    for p in (prompts * (requests // max(1, len(prompts)) + 1))[:requests]:
        start = time.perf_counter()
        run([p])
        single.append(time.perf_counter() - start)
    items = prompts[:batch]
    start = time.perf_counter()
    run(items)
    return {**percentiles(single), "throughput": len(items) * new_tokens / (time.perf_counter() - start),
            "throughput_unit": "generated tokens/s", "batch_size": len(items), "new_tokens": new_tokens}


def _quality(model, tok, recipe, manifest, rows: list[dict], variant: str) -> dict | None:
    from .classify_run import head_logits

    if recipe.task == "classification":
        if variant == "base":
            return None  # a bare encoder has no head: its zero-shot accuracy is in the baselines
        labels = manifest["labels"]
        logits = head_logits(model, tok, [r["text"] for r in rows], max_length=recipe.model.max_length)
        y = np.array([labels.index(r["label"]) for r in rows])
        return {"accuracy": float((logits.argmax(1) == y).mean()), "rows": len(rows)}
    import torch

    from ..train.tasks import CausalTask
    from .generate_run import perplexity

    task = CausalTask(recipe.task, loss_on=recipe.train.loss_on)
    ppl = perplexity(model, tok, task, rows, recipe.model.max_length, torch.float32)
    return {"perplexity": ppl["perplexity"], "rows": len(rows)}


def measure(run_dir: Path, variant: str, rows: list[dict], *, requests: int, batch: int, new_tokens: int) -> dict:
    """Measure one variant in this process (run it in a fresh one: see :func:`measure_variants`)."""
    from ..run.directory import read_run

    manifest, recipe = read_run(run_dir)
    before = _rss_mb()
    start = time.perf_counter()
    model, tok, disk_mb, note = _load(run_dir, variant)
    load_s = time.perf_counter() - start
    loaded = _rss_mb()
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if recipe.task == "classification":
        timings = _classify_timings(model, tok, [r["text"] for r in rows], recipe.model.max_length, requests, batch)
    else:
        prompts = [next(m["content"] for m in r["messages"] if m["role"] == "user") if "messages" in r
                   else r["text"][:400] for r in rows]
        timings = _generate_timings(model, tok, prompts, requests, batch, new_tokens)
    quality = _quality(model, tok, recipe, manifest, rows, variant)
    return {"variant": variant, "note": note, "load_s": load_s, "disk_mb": disk_mb,
            "memory_mb": loaded - before, "peak_rss_mb": _peak_rss_mb(), **timings, "quality": quality}


def measure_variants(run_dir: str | Path, rows: list[dict], *, requests: int = 20, batch: int = 16,
                     new_tokens: int = 32, variants: tuple[str, ...] = VARIANTS, progress=None) -> list[dict]:
    """Measure every variant that applies to the run, each in a fresh subprocess, one at a time."""
    from ..methods.registry import METHODS
    from ..run.directory import read_run

    run_dir = Path(run_dir)
    _, recipe = read_run(run_dir)
    if not METHODS[recipe.method.name].mergeable:
        variants = tuple(v for v in variants if v in ("base", "tuned"))
    if METHODS[recipe.method.name].storage == "model":
        variants = tuple(v for v in variants if v != "merged")  # the tuned model already is a plain model
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        rows_file = Path(tmp) / "rows.json"
        rows_file.write_text(json.dumps(rows))
        for variant in variants:
            if progress:
                progress(variant)
            cmd = [sys.executable, "-m", "nichetune.eval.latency", str(run_dir), variant, str(rows_file),
                   "--requests", str(requests), "--batch", str(batch), "--new-tokens", str(new_tokens)]
            proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
            if proc.returncode != 0:
                tail = proc.stderr.strip().splitlines()[-1:] or ["(no output)"]
                results.append({"variant": variant, "error": tail[0]})
                continue
            results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="measure one serving variant of a run (used by nichetune eval)")
    p.add_argument("run_dir", type=Path)
    p.add_argument("variant", choices=VARIANTS)
    p.add_argument("rows", type=Path, help="a JSON list of rows")
    p.add_argument("--requests", type=int, default=20)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--new-tokens", type=int, default=32)
    args = p.parse_args(argv)
    result = measure(args.run_dir, args.variant, json.loads(args.rows.read_text()), requests=args.requests,
                     batch=args.batch, new_tokens=args.new_tokens)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())

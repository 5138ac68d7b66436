"""Latency and footprint of the ways a run can be served, each beside its quality.

Variants: the base model, the tuned model as trained (base + adapter), and every export format
that applies to the run (``nichetune.export`` formats: merged, bf16, int8, and for encoder classifiers
ONNX and int8 ONNX in onnxruntime): latency writes each with export's own writer and measures the
loaded folder, exactly what ``nichetune export`` ships. Each variant is
measured in its own freshly spawned process, one after the other, so its peak memory is its own
and no two processes compete for the cores.

Per variant: p50 / p95 / p99 single-request latency, batch throughput, resident memory added by
loading, the process's peak resident memory, size on disk, and quality on the same rows
(accuracy for classifiers, response perplexity for generators).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from ..export.formats import folder_mb, write_export
from ..export.registry import FORMATS
from ..hardware import peak_rss_mb, rss_mb
from ..timing import percentiles, single_requests

VARIANTS = ("base", "tuned", *FORMATS)


def _load(run_dir: Path, variant: str, folder: Path | None):
    """(runner, size on disk in MB, note) for one variant; an export variant loads its written ``folder``."""
    import torch

    from ..export.formats import torch_runner, with_stack
    from ..methods.registry import METHODS
    from ..models.heads import HEADS
    from ..models.loading import load_causal_lm, load_encoder
    from ..run.loading import base_model, load_run, read_run
    from ..tasks.lexical import load_stack

    manifest, recipe = read_run(run_dir)
    max_length = recipe.model.max_length
    if variant in FORMATS:
        runner = with_stack(FORMATS[variant].load(folder, manifest.head, max_length), load_stack(folder))
        return runner, folder_mb(folder), FORMATS[variant].note
    base = base_model(manifest, recipe)
    base_mb = folder_mb(base.path)
    if variant == "base":  # a fresh head does not exist before training: time the bare encoder
        fresh = HEADS[manifest.head].fresh
        model, tok = (load_encoder if fresh else load_causal_lm)(base, dtype="fp32", device="cpu")
        runner = torch_runner(model, tok, "causal", max_length)
        if fresh:
            runner.logits = lambda texts: _encoder_forward(model, tok, texts, max_length)
        return runner, base_mb, "the untuned base model"
    run = load_run(run_dir, dtype=torch.float32)
    runner = with_stack(torch_runner(run.model, run.tokenizer, manifest.head, max_length), run.lexical)
    whole = METHODS[manifest.method_name].whole_model
    weights = run.paths.weights(whole)
    if whole:
        return runner, folder_mb(weights), "the whole tuned model"
    return runner, base_mb + folder_mb(weights), f"base + {folder_mb(weights):.1f} MB {manifest.method_name} adapter"


def _encoder_forward(model, tok, texts: list[str], max_length: int):
    import torch

    from ..truncation import encode_batch

    enc = encode_batch(tok, texts, max_length)
    with torch.inference_mode():
        model(**enc)
    return np.zeros((len(texts), 1))


def _classify_timings(logits, texts: list[str], requests: int, batch: int) -> dict:
    single = single_requests(logits, texts, requests, warmup=3)
    start = time.perf_counter()
    for i in range(0, len(texts), batch):
        logits(texts[i : i + batch])
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

    single = single_requests(run, prompts, requests)
    items = prompts[:batch]
    start = time.perf_counter()
    run(items)
    return {**percentiles(single), "throughput": len(items) * new_tokens / (time.perf_counter() - start),
            "throughput_unit": "generated tokens/s", "batch_size": len(items), "new_tokens": new_tokens}


def _quality(runner, recipe, manifest, rows: list[dict], variant: str) -> dict | None:
    from ..tasks import task_spec
    from ..tasks.scoring import score_rows

    spec = task_spec(recipe.task)
    if spec.labelled:
        if variant == "base":
            return None  # a bare encoder has no head: its zero-shot accuracy is in the baselines
        logits = runner.logits([r["text"] for r in rows])
        y = np.array([manifest.labels.index(r["label"]) for r in rows])
        return {"accuracy": float((logits.argmax(1) == y).mean()), "rows": len(rows)}
    task = spec.build(None, recipe.train)
    ppl = score_rows(runner.model, task, runner.tokenizer, rows, recipe.model.max_length)
    return {"perplexity": ppl["perplexity"], "rows": len(rows)}


def measure(run_dir: Path, variant: str, rows: list[dict], *, requests: int, batch: int, new_tokens: int,
            folder: Path | None = None) -> dict:
    """Measure one variant in this process (run it in a fresh one: see :func:`measure_variants`)."""
    from ..run.loading import read_run
    from ..tasks import task_spec

    manifest, recipe = read_run(run_dir)
    before = rss_mb()
    start = time.perf_counter()
    runner, disk_mb, note = _load(run_dir, variant, folder)
    load_s = time.perf_counter() - start
    loaded = rss_mb()
    if task_spec(recipe.task).labelled:
        timings = _classify_timings(runner.logits, [r["text"] for r in rows], requests, batch)
    else:
        prompts = [next(m["content"] for m in r["messages"] if m["role"] == "user") if "messages" in r
                   else r["text"][:400] for r in rows]
        timings = _generate_timings(runner.model, runner.tokenizer, prompts, requests, batch, new_tokens)
    quality = _quality(runner, recipe, manifest, rows, variant)
    return {"variant": variant, "note": note, "load_s": load_s, "disk_mb": disk_mb,
            "memory_mb": loaded - before, "peak_rss_mb": peak_rss_mb(), **timings, "quality": quality}


def _quiet() -> None:
    os.environ["TQDM_DISABLE"] = "1"


def _in_fresh_process(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` in a newly spawned interpreter: its peak memory is its own."""
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"), initializer=_quiet) as pool:
        return pool.submit(fn, *args, **kwargs).result()


def measured(results: list[dict]) -> list[dict]:
    """The rows of :func:`measure_variants` that hold timings (not those that failed or were skipped)."""
    return [r for r in results if "p50_ms" in r]


def measure_variants(run_dir: str | Path, rows: list[dict], *, requests: int = 20, batch: int = 16,
                     new_tokens: int = 32, variants: tuple[str, ...] | None = None, progress=None) -> list[dict]:
    """Measure every variant that applies to the run, each in a fresh process, one at a time. A format that this
    machine cannot run fast (``ExportFormat.slow_here``) gets a row saying why instead of timings.

    Export variants are written first (by this process, with export's own writers) into a temporary
    folder; each measuring process only loads its folder, so load time and memory are the export's.
    """
    import tempfile

    from ..run.loading import load_run

    run_dir = Path(run_dir)
    run = load_run(run_dir)
    m = run.manifest
    wanted = variants or VARIANTS
    variants = tuple(v for v in wanted if v not in FORMATS or FORMATS[v].applies_to(m.method_name, m.head,
                                                                                     m.base_model.architectures))
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        folders: dict[str, Path] = {}
        skipped = {v: reason for v in variants if v in FORMATS and (reason := FORMATS[v].slow_here())}
        for variant in variants:
            if variant in FORMATS and variant not in skipped:
                try:
                    folders[variant] = Path(tmp) / variant
                    folders[variant].mkdir()
                    run = run or load_run(run_dir)
                    write_export(FORMATS[variant], run, folders[variant])
                except Exception as exc:  # noqa: BLE001  (reported in its row; the others are still measured)
                    folders[variant] = exc
                run = None  # a writer may merge the run's model in place: the next variant loads it afresh
        del run
        for variant in variants:
            if variant in skipped:
                results.append({"variant": variant, "skipped": skipped[variant]})
                continue
            if progress:
                progress(variant)
            if isinstance(folders.get(variant), Exception):
                results.append({"variant": variant, "error": f"export failed: {folders[variant]}"})
                continue
            try:
                results.append(_in_fresh_process(measure, run_dir, variant, rows, requests=requests, batch=batch,
                                                 new_tokens=new_tokens, folder=folders.get(variant)))
            except Exception as exc:  # noqa: BLE001  (a variant that fails is reported, the others still measured)
                results.append({"variant": variant, "error": f"{type(exc).__name__}: {exc}"})
    return results

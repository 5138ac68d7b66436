"""Each export of a run beside the run it came from (base + adapter, unexported), side by side: size on
disk, load time, p50 / p95 single-request latency, batch throughput and peak memory. Timings come from
one process, one form after another; peak memory (VmHWM) from a fresh process per form that loads only
that form and serves the same requests. A classifier is timed on single texts and batches of 16; a
language model on a forward pass over one held-out row (scoring) and on batches of 8 rows.

    .venv/bin/python benchmarks/export_formats.py demo-out/runs/drug-reviews-recommended \\
        demo-out/exports/drug-reviews-recommended-{merged,int8,onnx}
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import time
from pathlib import Path


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("VmHWM:")).split()[1]) / 1024


def peak_of(run_dir: str, folder: str | None, requests: int) -> float:
    """In a fresh process: load the run (folder None) or an export, serve ``requests``, return the peak RSS."""
    next(load_forms(Path(run_dir), [Path(folder)] if folder else [], requests, with_run=folder is None))
    return peak_rss_mb()


def timings(call, items: list, requests: int, batch: int) -> dict:
    from nichetune.timing import percentiles, single_requests

    single = percentiles(single_requests(call, items, requests))
    start = time.perf_counter()
    done = 0
    for i in range(0, min(len(items), 4 * batch), batch):
        call(items[i : i + batch])
        done += len(items[i : i + batch])
    return {"p50_ms": single["p50_ms"], "p95_ms": single["p95_ms"], "throughput": done / (time.perf_counter() - start)}


def load_forms(run_dir: Path, exports: list[Path], requests: int, *, with_run: bool = True):
    """Yield one result per form: the run itself first (unless not ``with_run``), then each export (loaded,
    timed, released). Only the run form loads the run's weights."""
    from nichetune.export.export import read_export
    from nichetune.export.formats import folder_mb, torch_runner
    from nichetune.export.parity import held_out_rows, score_rows
    from nichetune.export.registry import FORMATS
    from nichetune.methods.registry import METHODS
    from nichetune.run.loading import base_model, load_run, read_run
    from nichetune.run.paths import RunPaths
    from nichetune.tasks import task_spec

    manifest, recipe = read_run(run_dir)
    rows, _ = held_out_rows(RunPaths(run_dir), 64)
    spec = task_spec(recipe.task)
    max_length = recipe.model.max_length
    head = manifest.head
    task = spec.build(None, recipe.train)

    def measure(r) -> dict:
        if spec.labelled:
            return {**timings(r.logits, [row["text"] for row in rows], requests, 16), "unit": "texts/s"}
        return {**timings(lambda part: score_rows(r.model, task, r.tokenizer, part, max_length), rows,
                          max(5, requests // 4), 8), "unit": "rows/s"}

    if with_run:
        start = time.perf_counter()
        run = load_run(run_dir)
        load_s = time.perf_counter() - start
        whole = METHODS[manifest.method_name].whole_model
        size = folder_mb(run.paths.weights(whole)) + (0 if whole else folder_mb(base_model(manifest, recipe).path))
        runner = torch_runner(run.model, run.tokenizer, head, max_length)
        yield {"form": "run (unexported)", "size_mb": size, "load_s": load_s, **measure(runner)}
        del run, runner
        gc.collect()
    for folder in exports:
        fmt = read_export(folder)["format"]
        start = time.perf_counter()
        loaded = FORMATS[fmt].load(folder, head, max_length)
        load_s = time.perf_counter() - start
        yield {"form": fmt, "size_mb": folder_mb(folder), "load_s": load_s, **measure(loaded)}
        del loaded
        gc.collect()


def main() -> int:
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("exports", type=Path, nargs="+")
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()
    results = list(load_forms(args.run, args.exports, args.requests))
    for result, folder in zip(results, [None, *args.exports], strict=True):
        with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
            result["peak_rss_mb"] = pool.submit(peak_of, str(args.run), str(folder) if folder else None,
                                                args.requests).result()
    base = results[0]
    print(f"| form | size MB | load s | p50 ms | p95 ms | throughput ({base['unit']}) | peak RSS MB | p50 vs run |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['form']} | {r['size_mb']:.1f} | {r['load_s']:.2f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | "
              f"{r['throughput']:.1f} | {r['peak_rss_mb']:.0f} | {base['p50_ms'] / r['p50_ms']:.2f}x |")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

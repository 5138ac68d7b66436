"""Each export of a run beside the run it came from (base + adapter, unexported), side by side in one
process: size on disk, load time, p50 / p95 single-request latency, batch throughput and memory added by
loading. A classifier is timed on single texts and batches of 16; a language model on a forward pass over
one held-out row (scoring) and on batches of 8 rows.

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

import numpy as np


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def timings(call, items: list, requests: int, batch: int) -> dict:
    call(items[:1])
    single = []
    for item in (items * (requests // max(1, len(items)) + 1))[:requests]:
        start = time.perf_counter()
        call([item])
        single.append(time.perf_counter() - start)
    start = time.perf_counter()
    done = 0
    for i in range(0, min(len(items), 4 * batch), batch):
        call(items[i : i + batch])
        done += len(items[i : i + batch])
    ms = np.asarray(single) * 1000
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "throughput": done / (time.perf_counter() - start)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("exports", type=Path, nargs="+")
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()

    from nichetune.export.export import read_export
    from nichetune.export.formats import folder_mb, torch_runner
    from nichetune.export.parity import _per_row, held_out_rows
    from nichetune.export.registry import FORMATS
    from nichetune.methods.registry import METHODS
    from nichetune.run.loading import base_model, load_run
    from nichetune.tasks import task_spec

    before = rss_mb()
    start = time.perf_counter()
    run = load_run(args.run)
    load_s = time.perf_counter() - start
    rows, _ = held_out_rows(run, 64)
    spec = task_spec(run.recipe.task)
    max_length = run.recipe.model.max_length
    head = run.manifest.head
    whole = METHODS[run.manifest.method_name].whole_model
    size = folder_mb(run.paths.weights(whole)) + (0 if whole else folder_mb(base_model(run.manifest, run.recipe).path))
    runner = torch_runner(run.model, run.tokenizer, head, max_length)
    task = spec.build(None, run.recipe.train)

    def measure(r) -> dict:
        if spec.labelled:
            return timings(r.logits, [row["text"] for row in rows], args.requests, 16)
        return timings(lambda part: _per_row(r.model, task, r.tokenizer, part, max_length), rows,
                       max(5, args.requests // 4), 8)

    results = [{"form": "run (unexported)", "size_mb": size, "load_s": load_s, "memory_mb": rss_mb() - before,
                **measure(runner)}]
    del run, runner
    gc.collect()
    for folder in args.exports:
        fmt = read_export(folder)["format"]
        before = rss_mb()
        start = time.perf_counter()
        loaded = FORMATS[fmt].load(folder, head, max_length)
        load_s = time.perf_counter() - start
        results.append({"form": fmt, "size_mb": folder_mb(folder), "load_s": load_s, "memory_mb": rss_mb() - before,
                        **measure(loaded)})
        del loaded
        gc.collect()
    unit = "texts/s" if spec.labelled else "rows/s"
    base = results[0]
    print(f"| form | size MB | load s | p50 ms | p95 ms | throughput ({unit}) | memory added MB | p50 vs run |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['form']} | {r['size_mb']:.1f} | {r['load_s']:.2f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | "
              f"{r['throughput']:.1f} | {r['memory_mb']:.0f} | {base['p50_ms'] / r['p50_ms']:.2f}x |")
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

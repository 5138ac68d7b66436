"""Ingestion throughput and peak memory, every reader side by side in one run.

    .venv/bin/python benchmarks/bench_ingest.py [--rows 100000]

Writes the same synthetic classification rows (1% planted bad rows) as JSONL, JSON array, CSV
and Parquet, validates each into a quarantine file, and reports rows/s and MB/s (timed pass)
and peak Python allocations (a second pass under tracemalloc) next to file size, so bounded
memory is visible as a ratio.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import tempfile
import time
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from nichetune.data.validate import validate_file

WORDS = "patient reported relief from pain after two weeks but mild nausea and headaches persisted".split()


def make_rows(n: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        text = " ".join(rng.choices(WORDS, k=rng.randint(8, 60)))
        row = {"text": text, "label": rng.choice(["positive", "negative", "neutral"]), "condition": f"c{i % 40}"}
        if i % 100 == 0:
            row["text"] = ""  # a planted bad row: 1%
        rows.append(row)
    return rows


def write_all(rows: list[dict], folder: Path) -> dict[str, Path]:
    paths = {fmt: folder / f"data.{fmt}" for fmt in ("jsonl", "json", "csv", "parquet")}
    with open(paths["jsonl"], "w") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    paths["json"].write_text(json.dumps(rows, indent=1))
    with open(paths["csv"], "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["text", "label", "condition"])
        writer.writeheader()
        writer.writerows(rows)
    pq.write_table(pa.Table.from_pylist(rows), paths["parquet"])
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = write_all(make_rows(args.rows), folder)
        print(f"{args.rows} rows, 1% planted bad rows")
        print(f"{'format':<8} {'size MB':>8} {'seconds':>8} {'rows/s':>9} {'MB/s':>6} {'peak MB':>8} "
              f"{'peak/size':>9} {'quarantined':>11}")
        for fmt, path in paths.items():
            size = path.stat().st_size / 1e6
            quarantine = folder / f"q-{fmt}.jsonl"
            start = time.perf_counter()  # timed pass: tracemalloc would tax every allocation
            report = validate_file(path, task="classification", quarantine=quarantine)
            seconds = time.perf_counter() - start
            tracemalloc.start()  # separate memory pass
            validate_file(path, task="classification", quarantine=quarantine)
            peak = tracemalloc.get_traced_memory()[1] / 1e6
            tracemalloc.stop()
            print(f"{fmt:<8} {size:>8.1f} {seconds:>8.2f} {report.total / seconds:>9.0f} {size / seconds:>6.1f} "
                  f"{peak:>8.2f} {peak / size:>9.3f} {report.quarantined:>11}")

if __name__ == "__main__":
    main()

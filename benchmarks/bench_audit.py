"""Audit speed and memory on 100k short records (the issue's bar: under a minute on 2 cores).

    .venv/bin/python benchmarks/bench_audit.py [--rows 100000] [--tokenizer minilm-l6]

Synthetic short reviews with 1% exact duplicates, 1% near duplicates, 0.5% PII and a 10%
test split; each configuration runs in a fresh process so peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = ("patient reported relief from pain after two weeks but mild nausea headaches dizziness sleep improved "
         "appetite dose increased side effects stopped doctor switched tablets morning evening anxiety mood "
         "weight gain rash fatigue worked great terrible").split()


def make(path: Path, test: Path, n: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        text = " ".join(rng.choices(WORDS, k=rng.randint(12, 30)))
        if i % 100 == 1:
            text = rows[-1]["text"].upper()  # exact duplicate
        elif i % 100 == 2:
            text = rows[-2]["text"] + " really"  # near duplicate
        elif i % 200 == 3:
            text += f" call me on +44 20 7946 {i % 10000:04d} or mail p{i}@example.org"
        rows.append({"id": str(i), "text": text, "label": rng.choice(["positive", "negative", "neutral"]),
                     "condition": f"c{i % 50}", "group": f"g{i // 3}"})
    cut = int(n * 0.9)
    path.write_text("\n".join(json.dumps(r) for r in rows[:cut]) + "\n")
    test.write_text("\n".join(json.dumps(r) for r in rows[cut:]) + "\n")


def run_one(train: str, test: str, tokenizer: str | None) -> None:
    from nichetune.data.audit import audit_dataset
    from nichetune.data.schema import FieldMap

    start = time.perf_counter()
    report = audit_dataset(train, tests=[test], tokenizer=tokenizer, fields=FieldMap(slices=["condition"]))
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    leak = report["leakage"][Path(test).name]
    print(json.dumps({"tokenizer": tokenizer or "words", "seconds": round(seconds, 1), "peak_rss_mb": round(peak_mb),
                      "rows": report["overview"]["rows"], "exact_clusters": report["duplicates"]["exact_clusters"],
                      "near_clusters": report["duplicates"]["near_clusters"],
                      "pii_rows": report["pii"]["rows_with_pii"], "leaked_rows": leak["leaked_rows"]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--tokenizer", default="minilm-l6", help="'' to count words only")
    parser.add_argument("--_one", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._one:
        run_one(args._one[0], args._one[1], args._one[2] or None)
        return
    with tempfile.TemporaryDirectory() as tmp:
        train, test = Path(tmp) / "train.jsonl", Path(tmp) / "test.jsonl"
        make(train, test, args.rows)
        size = (train.stat().st_size + test.stat().st_size) / 1e6
        print(f"{args.rows} rows ({size:.1f} MB), 90/10 train/test")
        for tok in ("", args.tokenizer):
            subprocess.run([sys.executable, __file__, "--_one", str(train), str(test), tok], check=True)


if __name__ == "__main__":
    main()

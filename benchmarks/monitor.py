"""Monitoring costs: what logging adds to a request, how fast the writer stores, and how long a drift report over
one million logged predictions takes (with peak memory), each part in one process.

    .venv/bin/python benchmarks/monitor.py --reference demo-out/runs/drug-reviews-recommended --items 1000000
    .venv/bin/python benchmarks/monitor.py --items 1000000 --peer-python /tmp/evv/bin/python   # beside Evidently

The logged items are the reference run's own held-out predictions replayed over 30 days (texts, labels,
calibrated confidences, conditions and drugs), with the second half of the month shifted (one condition's share
tripled), so the report has something to find. The report runs without the embedding test (it samples 100 items
a side per window, a fixed cost that does not grow with the log) unless ``--embeddings``.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _items(reference, n: int, days: int = 30):
    rng = random.Random(0)
    rows = reference.rows
    shifted = [r for r in rows if (r.get("slices") or {}).get("condition") == "Birth Control"] or rows
    for i in range(n):
        day = days * i / n
        r = rng.choice(shifted if day >= days / 2 and rng.random() < 0.2 else rows)
        yield day * 86400, {"text": r["text"], "label": r["predicted"], "confidence": r["confidence"],
                            "probabilities": r.get("probabilities") or {r["predicted"]: r["confidence"]},
                            "slices": r.get("slices") or {}, "version": "bench@1"}


def write_cost(folder: Path, reference, requests: int = 20000) -> dict:
    """The caller's cost of ``PredictionLog.write`` (what a request pays), and the writer's sustained rate."""
    from nichetune.prediction_log import PredictionLog

    log = PredictionLog(folder / "cost.sqlite", mask_pii=True, capacity=requests + 1)
    stream = _items(reference, requests)
    calls = []
    start = time.perf_counter()
    for i in range(requests):
        ts, item = next(stream)
        t0 = time.perf_counter()
        log.write(request_id=f"r{i}", model="reviews", route="/v1/classify", status=200, latency_ms=5.0,
                  request={"input": [item["text"]]}, response=[{"label": item["label"]}], items=[item], ts=ts)
        calls.append((time.perf_counter() - t0) * 1e6)
    log.close(timeout=600)
    total = time.perf_counter() - start
    calls.sort()
    return {"requests": requests, "write_p50_us": round(statistics.median(calls), 1),
            "write_p99_us": round(calls[int(0.99 * len(calls))], 1), "dropped": log.dropped,
            "stored_per_s": round(requests / total), "pii_masked": True}


def fill(path: Path, reference, n: int) -> float:
    """Write ``n`` items straight into the log's tables (bulk, as a long-running server would have)."""
    import sqlalchemy as sa

    from nichetune.prediction_log import ITEMS, METADATA, _item

    engine = sa.create_engine(f"sqlite:///{path}")
    METADATA.create_all(engine)
    start = time.perf_counter()
    batch = []
    with engine.begin() as conn:
        for i, (ts, item) in enumerate(_items(reference, n)):
            batch.append(_item(ts, f"r{i}", "reviews", 5.0, 0, item))
            if len(batch) == 5000:
                conn.execute(ITEMS.insert(), batch)
                batch = []
        if batch:
            conn.execute(ITEMS.insert(), batch)
    engine.dispose()
    return time.perf_counter() - start


def report_cost(path: Path, reference, embeddings: bool) -> dict:
    from nichetune.monitor.drift import drift_report
    from nichetune.monitor.log import read_items

    start = time.perf_counter()
    items = read_items(path, model="reviews", shadow=False)
    read_s = time.perf_counter() - start
    embed = None
    if embeddings:
        from nichetune.monitor.embedding import minilm_embedder

        embed = minilm_embedder()
    start = time.perf_counter()
    report = drift_report(items, reference, window_s=86400, embed=embed)
    return {"items": len(items), "read_s": round(read_s, 1), "report_s": round(time.perf_counter() - start, 1),
            "windows": len(report["windows"]), "tests": report["tests"], "alarms": len(report["alarms"]),
            "alarm_windows": sorted({a["window"] // 86400 for a in report["alarms"]}),
            "summary": report["summary"], "peak_rss_mb": round(_peak_mb())}


def peer_features(path: Path, reference, folder: Path) -> None:
    """The features both tools judge, one row per item: words, out-of-vocabulary rate, confidence, predicted
    label, condition, drug, and the day (for the peer, which has no windows of its own)."""
    from nichetune.monitor.log import read_items
    from nichetune.monitor.reference import words

    def row(text, label, confidence, slices):
        w = words(text)
        return {"words": len(w), "oov": sum(x not in reference.vocabulary for x in w) / max(len(w), 1),
                "confidence": confidence, "label": label, "condition": str(slices.get("condition")),
                "drug": str(slices.get("drug"))}

    with open(folder / "reference.jsonl", "w") as fh:
        for r in reference.rows:
            fh.write(json.dumps(row(r["text"], r["predicted"], r["confidence"], r.get("slices") or {})) + "\n")
    with open(folder / "current.jsonl", "w") as fh:
        for i in read_items(path, model="reviews"):
            fh.write(json.dumps({**row(i["text"], i["label"], i["confidence"], i["slices"]),
                                 "day": int(i["ts"] // 86400)}) + "\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference", default="demo-out/runs/drug-reviews-recommended", help="an evaluated run")
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--requests", type=int, default=20000, help="requests for the write-cost measurement")
    p.add_argument("--embeddings", action="store_true")
    p.add_argument("--peer-python", help="a Python with Evidently installed: run its DataDriftPreset beside ours")
    args = p.parse_args()
    from nichetune.monitor.reference import load_reference

    reference = load_reference(args.reference)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results = {"write": write_cost(folder, reference, args.requests)}
        results["fill_s"] = round(fill(folder / "big.sqlite", reference, args.items), 1)
        results["log_mb"] = round((folder / "big.sqlite").stat().st_size / 2**20)
        results["report"] = report_cost(folder / "big.sqlite", reference, args.embeddings)
        if args.peer_python:
            import subprocess

            peer = Path(__file__).with_name("monitor_evidently_peer.py")
            peer_features(folder / "big.sqlite", reference, folder)
            out = subprocess.run([args.peer_python, str(peer), str(folder)], capture_output=True, text=True,
                                 check=True)
            results["evidently"] = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()

"""Classification serving throughput: `nichetune serve` against a plain FastAPI + transformers pipeline app serving
the same merged model, at 1, 8 and 32 concurrent clients, side by side in one run.

    .venv/bin/python benchmarks/serve_classify.py demo-out/exports/drug-reviews-recommended-merged

Each server runs alone in its own process (uvicorn on 127.0.0.1); the clients are threads of this process, each
with its own keep-alive connection, sending one real drug review per request for ``--seconds`` per level. Peak
memory is the server process's VmHWM.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BASELINE_APP = '''
import os
from fastapi import FastAPI
from pydantic import BaseModel
from transformers import pipeline

clf = pipeline("text-classification", model=os.environ["BENCH_MODEL"], top_k=None, device="cpu")
app = FastAPI()

class Body(BaseModel):
    input: str

@app.post("/classify")
def classify(body: Body):  # the usual way: a sync route, run in FastAPI's thread pool
    return {"scores": clf(body.input, truncation=True, max_length=192)}
'''


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(port: int, path: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited:\n{log.read_text()[-2000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", path)
            if conn.getresponse().status < 500:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit("server did not start")


def _peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _load(port: int, path: str, make_body, headers: dict, clients: int, seconds: float, texts: list[str]) -> dict:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def client(k: int):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        i = k
        while time.perf_counter() < stop_at:
            body = json.dumps(make_body(texts[i % len(texts)]))
            i += clients
            start = time.perf_counter()
            conn.request("POST", path, body, {"Content-Type": "application/json", **headers})
            resp = conn.getresponse()
            resp.read()
            took = time.perf_counter() - start
            with lock:
                if resp.status == 200:
                    latencies.append(took)
                else:
                    errors[0] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    begin = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - begin
    q = statistics.quantiles(latencies, n=20) if len(latencies) > 1 else [float("nan")] * 19
    return {"requests": len(latencies), "errors": errors[0], "rps": len(latencies) / wall,
            "p50_ms": 1000 * statistics.median(latencies), "p95_ms": 1000 * q[18]}


def _run(name: str, cmd: list[str], env: dict, port: int, path: str, make_body, headers: dict, levels, seconds,
         texts, warm_path: str) -> dict:
    log = Path(tempfile.mkdtemp()) / f"{name}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait(port, warm_path, proc, log)
        _load(port, path, make_body, headers, 1, 3, texts)  # warm up: load the model, first allocations
        results = {c: _load(port, path, make_body, headers, c, seconds, texts) for c in levels}
        results["peak_mb"] = _peak_mb(proc.pid)
        return results
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("merged", help="a merged classifier export folder (nichetune export RUN --to merged)")
    ap.add_argument("--seconds", type=float, default=20.0, help="load per concurrency level")
    ap.add_argument("--levels", default="1,8,32")
    ap.add_argument("--also", action="append", default=[], metavar="LABEL=FOLDER",
                    help="also serve this export (e.g. the run's onnx-int8 export) as another column")
    args = ap.parse_args()
    levels = [int(x) for x in args.levels.split(",")]
    from nichetune.data.catalog import load_dataset
    from nichetune.serve.keys import create_key

    texts = [r["text"] for r in load_dataset("drug-reviews")][:400]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "BENCH_MODEL": args.merged}
    work = Path(tempfile.mkdtemp())
    key = create_key(work / "keys.json", "bench")

    port = _free_port()
    ours = _run("nichetune", [sys.executable, "-m", "nichetune", "serve", f"m={args.merged}", "--api-keys",
                              str(work / "keys.json"), "--port", str(port), "--no-prediction-log",
                              "--concurrency", "64", "--preload"],
                env, port, "/v1/classify", lambda t: {"model": "m", "input": t},
                {"Authorization": f"Bearer {key}"}, levels, args.seconds, texts, "/health")
    (work / "baseline_app.py").write_text(BASELINE_APP)
    port = _free_port()
    base = _run("baseline", [sys.executable, "-m", "uvicorn", "baseline_app:app", "--app-dir", str(work), "--port",
                             str(port), "--log-level", "warning"],
                env, port, "/classify", lambda t: {"input": t}, {}, levels, args.seconds, texts, "/docs")
    extra = {}
    for spec in args.also:
        label, folder = spec.split("=", 1)
        port = _free_port()
        extra[label] = _run(label, [sys.executable, "-m", "nichetune", "serve", f"m={folder}", "--api-keys",
                                    str(work / "keys.json"), "--port", str(port), "--no-prediction-log",
                                    "--concurrency", "64", "--preload"],
                            env, port, "/v1/classify", lambda t: {"model": "m", "input": t},
                            {"Authorization": f"Bearer {key}"}, levels, args.seconds, texts, "/health")
    columns = {"nichetune serve (same merged model)": ours, **{f"nichetune serve {k}": v for k, v in extra.items()}}

    def cell(r):
        return f"{r['rps']:.1f}, {r['p50_ms']:.0f} ms, {r['p95_ms']:.0f} ms"

    print("| clients | plain FastAPI + pipeline: req/s, p50, p95 | "
          + " | ".join(f"{name}: req/s, p50, p95 | ratio" for name in columns) + " |")
    print("|---|---|" + "---|---|" * len(columns))
    for c in levels:
        print(f"| {c} | {cell(base[c])} | " + " | ".join(f"{cell(r[c])} | {r[c]['rps'] / base[c]['rps']:.2f}x"
                                                        for r in columns.values()) + " |")
    print(f"| peak server memory | {base['peak_mb']:.0f} MB | "
          + " | ".join(f"{r['peak_mb']:.0f} MB | " for r in columns.values()) + "|")
    print(json.dumps({"baseline": base, **columns}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

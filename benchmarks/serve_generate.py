"""Generation serving throughput: `nichetune serve` (one stream, and 8 concurrent streams through the `openai`
client) against transformers' `generate` in a loop on the same merged model and dtype, and llama.cpp on the GGUF
export where a llama.cpp build is found (``--llama-cpp DIR`` holding ``llama-bench``, or on PATH).

    .venv/bin/python benchmarks/serve_generate.py demo-out/exports/foldoc-sft-lora-merged \
        --gguf demo-out/exports/foldoc-sft-lora-gguf/model.gguf --llama-cpp /opt/llama.cpp/bin

Greedy decoding of the same prompts, ``--new-tokens`` at most each; tokens/s counts generated tokens over wall
time (prompt processing included). Each contender runs alone.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PROMPTS = ["What is a compiler?", "What does FTP stand for?", "Explain what a kernel is.", "What is a mutex?",
           "What is garbage collection?", "What is a hash table?", "What is TCP?", "What is a URL?"]


def transformers_loop(folder: str, new_tokens: int, dtype_name: str) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype_name)).eval()
    tokens, start = 0, time.perf_counter()
    for prompt in PROMPTS:
        ids = tok.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                      return_tensors="pt", return_dict=True)["input_ids"]
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                                 do_sample=False, pad_token_id=tok.pad_token_id or tok.eos_token_id)
        tokens += out.shape[1] - ids.shape[1]
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # this process: the model and the loop
    return {"tokens": tokens, "seconds": wall, "tokens_per_s": tokens / wall, "peak_mb": peak}


def _peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _serve(folder: str, work: Path):
    import socket

    from nichetune.serve.keys import create_key

    key = create_key(work / "keys.json", "bench")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = open(work / "server.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "nichetune", "serve", f"m={folder}", "--api-keys",
                             str(work / "keys.json"), "--port", str(port), "--no-prediction-log",
                             *os.environ.get("BENCH_SERVE_FLAGS", "--preload").split()],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return proc, port, key


def nichetune_streams(folder: str, new_tokens: int, streams: int, stream: bool = True) -> dict:
    import openai

    work = Path(tempfile.mkdtemp())
    proc, port, key = _serve(folder, work)
    try:
        client = openai.OpenAI(api_key=key, base_url=f"http://127.0.0.1:{port}/v1", max_retries=0, timeout=600)
        deadline = time.monotonic() + 300
        while True:
            try:
                client.models.list()
                break
            except openai.APIConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit((work / "server.log").read_text()[-2000:]) from None
                time.sleep(0.5)

        def ask(prompt: str) -> int:
            if not stream:
                return client.chat.completions.create(model="m", messages=[{"role": "user", "content": prompt}],
                                                      max_tokens=new_tokens, temperature=0).usage.completion_tokens
            got = 0
            for chunk in client.chat.completions.create(
                    model="m", messages=[{"role": "user", "content": prompt}], max_tokens=new_tokens,
                    temperature=0, stream=True, stream_options={"include_usage": True}):
                if chunk.usage:
                    got = chunk.usage.completion_tokens
            return got

        ask(PROMPTS[0])  # warm-up
        start = time.perf_counter()
        with ThreadPoolExecutor(streams) as pool:
            tokens = sum(pool.map(ask, PROMPTS))
        wall = time.perf_counter() - start
        return {"tokens": tokens, "seconds": wall, "tokens_per_s": tokens / wall, "peak_mb": _peak_mb(proc.pid)}
    finally:
        proc.terminate()
        proc.wait(30)


def llama_cpp(gguf: str, binary: str, new_tokens: int) -> dict:
    """llama.cpp's own measurement: ``llama-bench`` generating ``new_tokens`` at batch 1 on all cores (5 runs)."""
    import json

    res = subprocess.run([binary, "-m", gguf, "-p", "0", "-n", str(new_tokens), "-t", str(os.cpu_count()),
                          "-o", "json"], capture_output=True, text=True, timeout=900)
    run = json.loads(res.stdout)[0]
    seconds = new_tokens / run["avg_ts"]
    return {"tokens": new_tokens, "seconds": seconds, "tokens_per_s": run["avg_ts"], "note": run["model_type"],
            "peak_mb": float("nan")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("merged", help="a merged causal-LM export folder")
    ap.add_argument("--gguf", help="the GGUF export of the same run, for llama.cpp")
    ap.add_argument("--llama-cpp", help="folder holding llama.cpp's llama-bench (default: PATH)")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--dtype", default="bfloat16", help="the baseline's dtype (nichetune serve --dtype auto picks "
                                                        "bf16 on CPUs that have it)")
    args = ap.parse_args()
    rows = {"transformers generate, loop": transformers_loop(args.merged, args.new_tokens, args.dtype),
            "nichetune serve, 1 client, not streamed": nichetune_streams(args.merged, args.new_tokens, 1, False),
            "nichetune serve, 1 stream": nichetune_streams(args.merged, args.new_tokens, 1),
            "nichetune serve, 8 concurrent streams": nichetune_streams(args.merged, args.new_tokens, 8)}
    binary = shutil.which("llama-bench", path=args.llama_cpp) if args.llama_cpp else shutil.which("llama-bench")
    if args.gguf and binary:
        row = llama_cpp(args.gguf, binary, args.new_tokens)
        rows[f"llama.cpp llama-bench on the GGUF export ({row['note']}), 1 stream"] = row
    elif args.gguf:
        print("llama.cpp's llama-bench not found: no llama.cpp row", file=sys.stderr)
    base = rows["transformers generate, loop"]["tokens_per_s"]
    print("| contender | generated tokens | seconds | tokens/s | vs transformers loop | peak memory |")
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['tokens']} | {r['seconds']:.1f} | {r['tokens_per_s']:.1f} | "
              f"{r['tokens_per_s'] / base:.2f}x | {r['peak_mb']:.0f} MB |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

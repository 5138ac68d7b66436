"""Generation serving throughput: `nichetune serve` (one stream, and 8 concurrent streams through the `openai`
client) against transformers' `generate` in a loop on the same merged model and dtype, and llama.cpp on the GGUF
export where a llama.cpp build is found (``--llama-cpp DIR`` holding ``llama-simple``, or on PATH).

    .venv/bin/python benchmarks/serve_generate.py demo-out/exports/foldoc-sft-lora-merged \
        --gguf demo-out/exports/foldoc-sft-lora-gguf/model.gguf --llama-cpp /opt/llama.cpp/bin

Greedy decoding of the same prompts, ``--new-tokens`` at most each; tokens/s counts generated tokens over wall
time (prompt processing included). Each contender runs alone.
"""

from __future__ import annotations

import argparse
import os
import re
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
    return {"tokens": tokens, "seconds": wall, "tokens_per_s": tokens / wall}


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
        return {"tokens": tokens, "seconds": wall, "tokens_per_s": tokens / wall}
    finally:
        proc.terminate()
        proc.wait(30)


def llama_cpp(gguf: str, binary: str, new_tokens: int) -> dict:
    tokens, wall = 0, 0.0
    for prompt in PROMPTS:
        start = time.perf_counter()
        res = subprocess.run([binary, "-m", gguf, "-n", str(new_tokens), prompt], capture_output=True, text=True,
                             timeout=600)
        wall += time.perf_counter() - start
        found = re.search(r"decoded (\d+) tokens", res.stderr + res.stdout)
        tokens += int(found.group(1)) if found else 0
    return {"tokens": tokens, "seconds": wall, "tokens_per_s": tokens / wall if wall else float("nan")}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("merged", help="a merged causal-LM export folder")
    ap.add_argument("--gguf", help="the GGUF export of the same run, for llama.cpp")
    ap.add_argument("--llama-cpp", help="folder holding llama.cpp's llama-simple (default: PATH)")
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--dtype", default="bfloat16", help="the baseline's dtype (nichetune serve --dtype auto picks "
                                                        "bf16 on CPUs that have it)")
    args = ap.parse_args()
    rows = {"transformers generate, loop": transformers_loop(args.merged, args.new_tokens, args.dtype),
            "nichetune serve, 1 client, not streamed": nichetune_streams(args.merged, args.new_tokens, 1, False),
            "nichetune serve, 1 stream": nichetune_streams(args.merged, args.new_tokens, 1),
            "nichetune serve, 8 concurrent streams": nichetune_streams(args.merged, args.new_tokens, 8)}
    binary = shutil.which("llama-simple", path=args.llama_cpp) if args.llama_cpp else shutil.which("llama-simple")
    if args.gguf and binary:
        rows["llama.cpp llama-simple on the GGUF (f32 weights), loop"] = llama_cpp(args.gguf, binary,
                                                                                  args.new_tokens)
    elif args.gguf:
        print("llama.cpp's llama-simple not found: no llama.cpp row", file=sys.stderr)
    base = rows["transformers generate, loop"]["tokens_per_s"]
    print("| contender | generated tokens | seconds | tokens/s | vs transformers loop |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['tokens']} | {r['seconds']:.1f} | {r['tokens_per_s']:.1f} | "
              f"{r['tokens_per_s'] / base:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Retrieval at 10k and 100k chunks: index build time, query latency per search mode, and quality of hybrid
search against BM25 alone and dense alone on the same questions.

    .venv/bin/python benchmarks/retrieval.py                      # both sizes, each in a fresh process
    .venv/bin/python benchmarks/retrieval.py --size 10000 --json  # one size (what the parent runs)

The corpus is real text the project already reads: FOLDOC definitions (each titled with its term), then BBC News
articles and drug reviews. 10k chunks: FOLDOC alone, 800-character chunks with 120 of overlap (the defaults).
100k chunks: all three, 100-character chunks without overlap (the text there is not big enough for 100k chunks
of 800). Questions are about FOLDOC terms in both indexes, of two kinds: by name ("What does X mean in
computing?") and by description (the definition's first words with the term removed: "Which computing term is
this: ..."). The relevant document is the term's entry. Dense search runs exact (numpy) and through a faiss HNSW
graph; peak memory is the process's VmHWM.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SETTINGS = {10_000: {"max_chars": 800, "overlap": 120, "corpora": ("foldoc",)},
            100_000: {"max_chars": 100, "overlap": 0, "corpora": ("foldoc", "bbc-news", "drug-reviews")}}


def _documents(size: int, folder: Path) -> tuple[Path, list[dict]]:
    """A JSONL of documents holding about ``size`` chunks, and the FOLDOC entries in it."""
    from nichetune.data.catalog import load_dataset
    from nichetune.retrieval.chunking import chunk_text

    s = SETTINGS[size]
    docs, chunks, entries = [], 0, []
    for name in s["corpora"]:
        for i, row in enumerate(load_dataset(name)):
            if chunks >= size:
                break
            if name == "foldoc":
                doc = {"id": row["term"], "title": row["term"], "text": row["definition"]}
                entries.append(row)
            else:
                doc = {"id": f"{name}-{i}", "text": row["text"]}
            text = f"# {doc['title']}\n\n{doc['text']}" if "title" in doc else doc["text"]
            chunks += len(chunk_text(text, max_chars=s["max_chars"], overlap=s["overlap"]))
            docs.append(doc)
    path = folder / "docs.jsonl"
    path.write_text("".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs))
    return path, entries


def _questions(entries: list[dict], n: int) -> dict[str, list[dict]]:
    step = max(1, len(entries) // n)
    picked = [e for e in entries[::step] if len(e["definition"].split()) >= 6][:n]
    by_name = [{"question": f"What does {e['term']} mean in computing?", "gains": {e["term"]: 1.0}} for e in picked]
    by_description = []
    for e in picked:
        words = re.sub(re.escape(e["term"]), " ", e["definition"], flags=re.I).split()[:14]
        by_description.append({"question": f"Which computing term is this: {' '.join(words)}?",
                               "gains": {e["term"]: 1.0}})
    return {"by name": by_name, "by description": by_description}


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _latency(fn, queries: list[str]) -> dict:
    times = []
    for q in queries:
        start = time.perf_counter()
        fn(q)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"p50_ms": round(statistics.median(times), 2), "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2)}


def one_size(size: int, n_questions: int) -> dict:
    import numpy as np

    from nichetune.retrieval.evaluate import evaluate_index
    from nichetune.retrieval.index import Encoder, _write_faiss, build_index, load_index

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        docs, entries = _documents(size, folder)
        s = SETTINGS[size]
        start = time.perf_counter()
        manifest = build_index([docs], folder / "idx", max_chars=s["max_chars"], overlap=s["overlap"])
        build_s = time.perf_counter() - start
        index = load_index(folder / "idx")
        texts = [c["text"] for c in index.chunks[:2000]]
        encoder = Encoder("minilm-l6")
        start = time.perf_counter()
        encoder(texts)
        encode_rate = len(texts) / (time.perf_counter() - start)
        start = time.perf_counter()
        _write_faiss(folder / "graph.faiss", index.vectors)
        hnsw_s = time.perf_counter() - start
        import faiss

        graph = faiss.read_index(str(folder / "graph.faiss"))
        graph.hnsw.efSearch = 256
        questions = _questions(entries, n_questions)
        queries = [q["question"] for qs in questions.values() for q in qs]
        index._encoder = encoder
        latency = {mode: _latency(lambda q, m=mode: index.search(q, k=10, mode=m), queries)
                   for mode in ("bm25", "dense", "hybrid")}
        quality = {kind: evaluate_index(index, qs, k=10) for kind, qs in questions.items()}
        exact_top = [[h.chunk["id"] for h in index.search(q, k=10, mode="dense")] for q in queries]
        index.graph = graph
        latency |= {f"{mode} (faiss)": _latency(lambda q, m=mode: index.search(q, k=10, mode=m), queries)
                    for mode in ("dense", "hybrid")}
        faiss_top = [[h.chunk["id"] for h in index.search(q, k=10, mode="dense")] for q in queries]
        overlap = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact_top, faiss_top, strict=True)]))
        vectors_mb = index.vectors.nbytes / 2**20
    return {"size": size, "chunks": manifest["chunks"], "documents": len(manifest["documents"]),
            "build_s": round(build_s, 1), "encode_chunks_per_s": round(encode_rate, 1),
            "hnsw_build_s": round(hnsw_s, 1),
            "vectors_mb": round(vectors_mb, 1), "latency": latency, "faiss_recall_at_10_vs_exact": round(overlap, 4),
            "quality": {kind: {"questions": q["questions"], "means": q["means"],
                               "verdicts": {k: v["sentence"] for k, v in q["verdicts"].items()}}
                        for kind, q in quality.items()},
            "peak_rss_mb": round(_peak_mb())}


def _table(results: list[dict]) -> str:
    lines = ["| | " + " | ".join(f"{r['chunks']:,} chunks" for r in results) + " |",
             "|---|" + "---|" * len(results)]
    lines.append("| documents | " + " | ".join(f"{r['documents']:,}" for r in results) + " |")
    lines.append("| build (read, chunk, encode, BM25, write) | " + " | ".join(f"{r['build_s']} s" for r in results)
                 + " |")
    lines.append("| MiniLM encoding | " + " | ".join(f"{r['encode_chunks_per_s']} chunks/s" for r in results) + " |")
    lines.append("| faiss HNSW graph build | " + " | ".join(f"{r['hnsw_build_s']} s" for r in results) + " |")
    for mode in results[0]["latency"]:
        lines.append(f"| query p50 / p95, {mode} | " + " | ".join(
            f"{r['latency'][mode]['p50_ms']} / {r['latency'][mode]['p95_ms']} ms" for r in results) + " |")
    lines.append("| faiss top-10 overlap with exact | " + " | ".join(
        f"{r['faiss_recall_at_10_vs_exact']:.3f}" for r in results) + " |")
    lines.append("| peak RSS | " + " | ".join(f"{r['peak_rss_mb']:,} MB" for r in results) + " |")
    out = ["\n".join(lines), ""]
    for kind in results[0]["quality"]:
        rows = ["| questions " + kind + " | " + " | ".join(f"{r['chunks']:,} chunks: recall@10 / MRR / nDCG@10"
                                                          for r in results) + " |", "|---|" + "---|" * len(results)]
        for mode in ("bm25", "dense", "hybrid"):
            rows.append(f"| {mode} | " + " | ".join(
                "{recall:.3f} / {mrr:.3f} / {ndcg:.3f}".format(**r["quality"][kind]["means"][mode]) for r in results)
                + " |")
        out += ["\n".join(rows), ""]
        for r in results:
            out += [f"- {r['chunks']:,} chunks, {kind}: {v}" for v in r["quality"][kind]["verdicts"].values()]
        out.append("")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, choices=sorted(SETTINGS), help="one size in this process")
    p.add_argument("--questions", type=int, default=200, help="questions of each kind")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if args.size:
        result = one_size(args.size, args.questions)
        print(json.dumps(result) if args.json else _table([result]))
        return
    results = []
    for size in sorted(SETTINGS):
        print(f"building and querying {size:,} chunks in a fresh process ...", file=sys.stderr, flush=True)
        out = subprocess.run([sys.executable, __file__, "--size", str(size), "--questions", str(args.questions),
                              "--json"], check=True, capture_output=True, text=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(json.dumps(results, indent=1) if args.json else _table(results))


if __name__ == "__main__":
    main()

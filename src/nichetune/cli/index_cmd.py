"""``nichetune index build | update | search | eval``: an index of domain documents, what it retrieves for a
question, and how well it retrieves on labelled questions."""

from __future__ import annotations

import sys

from .output import print_json


def register(sub) -> None:
    p = sub.add_parser("index", help="index domain documents (BM25 + dense) and search them",
                       description="build: read text, Markdown, HTML, PDF and JSONL documents (bad input goes to the "
                                   "index's quarantine.jsonl with the reason), chunk them by headings and "
                                   "paragraphs with overlap, and index the chunks for BM25 (bm25s) and dense "
                                   "search (an encoder, MiniLM by default). search: the best chunks for a "
                                   "question, BM25 and dense fused by reciprocal rank.")
    verbs = p.add_subparsers(dest="index_command", metavar="ACTION", required=True)
    b = verbs.add_parser("build", help="build an index folder from documents")
    b.add_argument("docs", nargs="+", help="files or folders (.txt, .md, .html, .pdf, .jsonl with a 'text' field)")
    b.add_argument("--out", required=True, help="the index folder to create (must not exist)")
    b.add_argument("--encoder", default="minilm-l6", help="embedded encoder name or model folder")
    b.add_argument("--max-chars", type=int, default=800, help="the most characters per chunk")
    b.add_argument("--overlap", type=int, default=120, help="characters a chunk repeats from the one before")
    b.set_defaults(func=build)
    u = verbs.add_parser("update", help="add and remove documents without rebuilding what stays")
    u.add_argument("index", help="an index folder")
    u.add_argument("--add", nargs="+", default=[], help="files or folders to add (changed documents are replaced)")
    u.add_argument("--remove", nargs="+", default=[], help="document ids to remove")
    u.set_defaults(func=update)
    s = verbs.add_parser("search", help="the best chunks for a question")
    s.add_argument("index", help="an index folder")
    s.add_argument("query")
    s.add_argument("-k", type=int, default=5, help="how many chunks")
    s.add_argument("--mode", choices=["hybrid", "bm25", "dense"], default="hybrid")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=search)
    e = verbs.add_parser("eval", help="recall@k, MRR and nDCG@k on labelled questions, per search mode")
    e.add_argument("index", help="an index folder")
    e.add_argument("questions", help='JSONL: {"question": "...", "relevant": ["doc id", ...]}')
    e.add_argument("-k", type=int, default=10, help="the cut-off for recall and nDCG")
    e.add_argument("--json", action="store_true", help="print JSON")
    e.set_defaults(func=evaluate)


def build(args) -> int:
    from ..retrieval.index import build_index

    manifest = build_index(args.docs, args.out, encoder=args.encoder, max_chars=args.max_chars,
                           overlap=args.overlap)
    print(f"index written to {args.out}: {len(manifest['documents'])} documents, {manifest['chunks']} chunks"
          + (f", {manifest['quarantined']} inputs quarantined (see {args.out}/quarantine.jsonl)"
             if manifest["quarantined"] else ""), file=sys.stderr)
    return 0


def update(args) -> int:
    from ..errors import NichetuneError
    from ..retrieval.index import update_index

    if not args.add and not args.remove:
        raise NichetuneError("nothing to update", hint="give --add FILES and/or --remove IDS")
    r = update_index(args.index, add=args.add, remove=args.remove)
    print(f"{args.index}: {len(r['added'])} added, {len(r['replaced'])} replaced, {len(r['removed'])} removed, "
          f"{len(r['unchanged'])} unchanged; {r['chunks']} chunks", file=sys.stderr)
    return 0


def search(args) -> int:
    from ..retrieval.index import load_index

    hits = load_index(args.index).search(args.query, k=args.k, mode=args.mode)
    if args.json:
        print_json([{"score": h.score, "ranks": h.ranks, **h.chunk} for h in hits])
        return 0
    for n, h in enumerate(hits, start=1):
        text = " ".join(h.chunk["text"].split())
        print(f"[{n}] {h.chunk['source']} chars {h.chunk['start']}-{h.chunk['end']}"
              f"{' (' + h.chunk['heading'] + ')' if h.chunk['heading'] else ''}  score {h.score:.4f}\n"
              f"    {text[:200]}{'...' if len(text) > 200 else ''}")
    return 0


def evaluate(args) -> int:
    from ..retrieval.evaluate import evaluate_index, read_questions
    from ..retrieval.index import load_index
    from .output import print_table

    result = evaluate_index(load_index(args.index), read_questions(args.questions), k=args.k)
    if args.json:
        print_json({k: v for k, v in result.items() if k != "per_question"})
        return 0
    k = result["k"]
    print_table([{"mode": mode, f"recall@{k}": f"{m['recall']:.3f}", "MRR": f"{m['mrr']:.3f}",
                  f"nDCG@{k}": f"{m['ndcg']:.3f}"} for mode, m in result["means"].items()],
                ["mode", f"recall@{k}", "MRR", f"nDCG@{k}"])
    for v in result["verdicts"].values():
        print(v["sentence"])
    return 0

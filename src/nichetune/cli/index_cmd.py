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
    b.add_argument("docs", nargs="*", help="files or folders (.txt, .md, .html, .pdf, .jsonl with a 'text' field)")
    b.add_argument("--out", help="the index folder to create (must not exist)")
    b.add_argument("--recipe", help="build the index plan in a recipe's retrieval section (nichetune recommend "
                                    "--knowledge changing --docs ...) instead")
    b.add_argument("--encoder", default="minilm-l6", help="embedded encoder name or model folder")
    b.add_argument("--max-chars", type=int, default=800, help="the most characters per chunk")
    b.add_argument("--overlap", type=int, default=120, help="characters a chunk repeats from the one before")
    b.add_argument("--dense-search", choices=["exact", "faiss"], default="exact",
                   help="exact cosine search (default), or a faiss HNSW graph for large corpora (pip install "
                        "-e '.[faiss]')")
    b.add_argument("--pii", choices=["keep", "mask", "quarantine"], default="keep",
                   help="documents with PII (e-mails, phones, IDs, ...): keep them (counted in the manifest), mask "
                        "it as [TYPE] before indexing, or quarantine the document")
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
    s.add_argument("--rerank", metavar="KIND:MODEL",
                   help="re-rank the best fused candidates: cross:FOLDER (a cross-encoder) or lm:MODEL (a chat "
                        "model judging yes/no)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s.set_defaults(func=search)
    r = verbs.add_parser("raft", help="write retrieval-aware SFT data: questions with gold and distractor sources",
                         description="RAFT (arXiv 2403.10131): each labelled question (JSONL with 'question', "
                                     "'relevant' and 'answer') becomes a chat example whose sources are its gold "
                                     "chunk among distractors (other documents' best-ranked chunks), and whose "
                                     "reply cites the gold source; for a share of questions the gold chunk is "
                                     "left out. A manifest beside the file records where every row came from.")
    r.add_argument("index", help="an index folder")
    r.add_argument("questions", help='JSONL: {"question": "...", "relevant": ["doc id"], "answer": "..."}')
    r.add_argument("--out", required=True, help="the SFT JSONL file to write")
    r.add_argument("--distractors", type=int, default=3, help="distractor chunks per example")
    r.add_argument("--p-gold", type=float, default=0.8, help="share of examples whose sources hold the gold chunk")
    r.add_argument("--abstain", action="store_true",
                   help="without the gold chunk, reply that the sources do not answer (default: the answer "
                        "without citations, as RAFT)")
    r.add_argument("--seed", type=int, default=0)
    r.set_defaults(func=raft)
    e = verbs.add_parser("eval", help="recall@k, MRR and nDCG@k on labelled questions, per search mode")
    e.add_argument("index", help="an index folder")
    e.add_argument("questions", help='JSONL: {"question": "...", "relevant": ["doc id", ...]}')
    e.add_argument("-k", type=int, default=10, help="the cut-off for recall and nDCG")
    e.add_argument("--model", help="also answer every question (it needs an 'answer' field) with this run or "
                                   "model, with and without retrieval, and score the answers")
    e.add_argument("--sources", type=int, default=3, help="chunks given to the model (with --model)")
    e.add_argument("--max-tokens", type=int, default=64, help="the longest answer (with --model)")
    e.add_argument("--out", help="write retrieval-eval.json and report.html into this folder")
    e.add_argument("--rerank", metavar="KIND:MODEL",
                   help="re-rank the best fused candidates: cross:FOLDER (a cross-encoder) or lm:MODEL (a chat "
                        "model judging yes/no)")
    e.add_argument("--json", action="store_true", help="print JSON")
    e.set_defaults(func=evaluate)


def build(args) -> int:
    from ..errors import NichetuneError
    from ..retrieval.index import build_index

    if args.recipe:
        from ..config.recipe import load_recipe

        plan = load_recipe(args.recipe).retrieval
        if plan is None:
            raise NichetuneError(f"{args.recipe} has no retrieval section (no index plan)",
                                 hint="nichetune recommend --knowledge changing --docs FILES writes one")
        if args.docs or args.out:
            raise NichetuneError("give either --recipe or DOCS --out, not both", hint="the recipe names both")
        args.docs, args.out = plan.docs, plan.index
        args.encoder, args.max_chars, args.overlap = plan.encoder, plan.max_chars, plan.overlap
        args.dense_search, args.pii = plan.dense_search, plan.pii
    if not args.docs or not args.out:
        raise NichetuneError("index build needs DOCS and --out (or --recipe)",
                             hint="nichetune index build docs/ --out my-index")
    manifest = build_index(args.docs, args.out, encoder=args.encoder, max_chars=args.max_chars,
                           overlap=args.overlap, dense_search=args.dense_search, pii=args.pii)
    print(f"index written to {args.out}: {len(manifest['documents'])} documents, {manifest['chunks']} chunks"
          + (f", {manifest['quarantined']} inputs quarantined (see {args.out}/quarantine.jsonl)"
             if manifest["quarantined"] else ""), file=sys.stderr)
    found = manifest["pii_found"]
    if found["documents"]:
        verb = {"keep": "kept as is (--pii mask to mask it)", "mask": "masked as [TYPE]"}[args.pii]
        print(f"PII in {found['documents']} documents ({', '.join(f'{t} {n}' for t, n in found['by_type'].items())}):"
              f" {verb}", file=sys.stderr)
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


def raft(args) -> int:
    from ..retrieval.index import load_index
    from ..retrieval.raft import write_raft

    r = write_raft(load_index(args.index), args.questions, args.out, distractors=args.distractors,
                   p_gold=args.p_gold, abstain=args.abstain, seed=args.seed)
    print(f"{r['rows']} examples written to {r['out']} ({r['with_gold']} with the gold source, "
          f"{r['without_gold']} without); train on it with data.path: {r['out']}", file=sys.stderr)
    return 0


def search(args) -> int:
    from ..retrieval.index import load_index
    from ..retrieval.rerank import load_reranker

    hits = load_index(args.index).search(args.query, k=args.k, mode=args.mode, reranker=load_reranker(args.rerank))
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
    from ..retrieval.rerank import load_reranker
    from .output import print_table

    index, questions = load_index(args.index), read_questions(args.questions)
    result = evaluate_index(index, questions, k=args.k, reranker=load_reranker(args.rerank))
    answers = None
    if args.model:
        from ..retrieval.answer_eval import evaluate_answers

        answers = evaluate_answers(index, questions, args.model, k=args.sources, max_tokens=args.max_tokens,
                                   progress=lambda text: print(text, file=sys.stderr, flush=True))
    if args.out:
        from ..retrieval.report import write_report

        page = write_report(args.out, result, {args.model: answers} if answers else None, index=args.index)
        print(f"report written to {page}", file=sys.stderr)
    if args.json:
        print_json({"retrieval": {k: v for k, v in result.items() if k != "per_question"},
                    "answers": answers})
        return 0
    k = result["k"]
    print_table([{"mode": mode, f"recall@{k}": f"{m['recall']:.3f}", "MRR": f"{m['mrr']:.3f}",
                  f"nDCG@{k}": f"{m['ndcg']:.3f}"} for mode, m in result["means"].items()],
                ["mode", f"recall@{k}", "MRR", f"nDCG@{k}"])
    for v in result["verdicts"].values():
        print(v["sentence"])
    if answers:
        names = list(answers["verdicts"])
        print()
        print_table([{"answers": who, **{n: f"{answers['means'][key][n]:.3f}" for n in names}}
                     for who, key in (("without retrieval", "without"), ("with retrieval", "with"))],
                    ["answers", *names])
        m = answers["means"]["with"]
        print(f"citation recall {_num(m['citation_recall'])}, citation precision {_num(m['citation_precision'])}")
        for v in answers["verdicts"].values():
            print(v["sentence"])
        print(answers["summary"])
    return 0


def _num(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"

"""``nichetune ask INDEX [--model RUN] "question"``: an answer from the index with checked citations."""

from __future__ import annotations

from .output import print_json


def register(sub) -> None:
    p = sub.add_parser("ask", help="answer a question from an index, with citations checked against the sources",
                       description="Retrieves the best chunks (BM25 + dense), answers with the model, and checks "
                                   "every [n] citation and quoted span against the source it names; unsupported "
                                   "ones are flagged.")
    p.add_argument("index", help="an index folder (nichetune index build)")
    p.add_argument("question")
    p.add_argument("--model", default="smollm2-135m-instruct", help="run directory or model (default %(default)s)")
    p.add_argument("-k", type=int, default=3, help="chunks given to the model")
    p.add_argument("--max-tokens", type=int, default=200)
    p.add_argument("--rerank", metavar="KIND:MODEL", help="re-rank candidates: cross:FOLDER or lm:MODEL")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..retrieval.answer import ask
    from ..retrieval.index import load_index
    from ..retrieval.rerank import load_reranker

    answer = ask(load_index(args.index), args.question, args.model, k=args.k, max_tokens=args.max_tokens,
                 reranker=load_reranker(args.rerank))
    if args.json:
        print_json({"question": answer.question, "answer": answer.text, "checks": answer.checks,
                    "sources": [{"n": n, **h.chunk} for n, h in enumerate(answer.sources, start=1)]})
        return 0
    print(answer.text.strip())
    print()
    for n, h in enumerate(answer.sources, start=1):
        print(f"[{n}] {h.chunk['source']} chars {h.chunk['start']}-{h.chunk['end']}")
    for c in answer.checks:
        print(f"{'ok' if c['supported'] else 'UNSUPPORTED'} {c['kind']}: {c['claim'][:80]} ({c['reason']})")
    return 0

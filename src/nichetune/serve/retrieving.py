"""Chat answers from an index: the last user message is the question, the retrieved chunks become numbered
sources in the prompt, and the reply carries the citations and their checks (``retrieval.answer``)."""

from __future__ import annotations

from ..retrieval.answer import SYSTEM, check_citations, prompt
from .errors import ApiError
from .state import ServerState, run_model_work


def _index(state: ServerState, name: str):
    if name not in state.indexes:
        raise ApiError(404, f"the index {name!r} is not served here (start the server with --index {name}=DIR)",
                       code="index_not_found", param="retrieval.index")
    return state.indexes[name]


async def with_retrieval(state: ServerState, request, messages: list[dict], retrieval) -> tuple[list[dict], dict,
                                                                                                 object]:
    """``(messages with the sources, what to log, extra(texts) -> reply fields)``.

    Raises:
        ApiError: 404 for an unknown index, 422 when the last message is not the user's question.
    """
    if messages[-1]["role"] != "user" or not messages[-1]["content"].strip():
        raise ApiError(422, "with retrieval, the last message must be the user's question", code="no_question",
                       param="messages")
    question = messages[-1]["content"]
    index = _index(state, retrieval.index)
    hits = await run_model_work(state, request, f"index:{retrieval.index}",
                                lambda: index.search(question, k=retrieval.k))
    system = " ".join([SYSTEM, *(m["content"] for m in messages if m["role"] == "system")])
    rest = [m for m in messages[:-1] if m["role"] != "system"]
    augmented = [{"role": "system", "content": system}, *rest, {"role": "user", "content": prompt(question, hits)}]
    sources = [h.chunk["text"] for h in hits]
    citations = [{"n": n, "chunk": h.chunk["id"], "doc": h.chunk["doc"], "source": h.chunk["source"],
                  "start": h.chunk["start"], "end": h.chunk["end"], "text": h.chunk["text"]}
                 for n, h in enumerate(hits, start=1)]

    def extra(texts: list[str]) -> dict:
        return {"citations": citations, "citation_checks": [check_citations(t, sources) for t in texts]}

    logged = {"retrieval": {"index": retrieval.index, "chunks": [h.chunk["id"] for h in hits]}}
    return augmented, logged, extra

"""``POST /v1/embeddings``: mean-pooled, L2-normalised sentence embeddings from an encoder (a bare one, or the
encoder inside a classifier run with its adapter), as floats or as base64 little-endian float32."""

import base64
import time

from fastapi import APIRouter, Request

from ...infer.classify import sentence_vectors
from ..schemas import EmbeddingRequest
from ..state import run_model_work
from . import state
from ._inputs import texts_of

router = APIRouter()


@router.post("/v1/embeddings")
async def embeddings(body: EmbeddingRequest, request: Request) -> dict:
    s = state(request)
    target = s.target(body.model, "embeddings")
    texts = texts_of(body.input, s.config.max_inputs)
    started = time.perf_counter()

    def work():
        with s.pool.use(target.name) as loaded:
            return sentence_vectors(loaded.model, loaded.tokenizer, texts, max_length=target.max_length,
                                    batch_size=len(texts))

    vectors, tokens = await run_model_work(s, request, target.name, work)
    if body.encoding_format == "base64":
        items = [base64.b64encode(v.astype("<f4").tobytes()).decode() for v in vectors]
    else:
        items = [v.tolist() for v in vectors]
    s.record(request, model=target.name, route="/v1/embeddings", status=200, started=started,
             request_body={"input": texts}, response_body={"dimensions": int(vectors.shape[1])})
    return {"object": "list", "model": target.name, "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            "data": [{"object": "embedding", "index": i, "embedding": e} for i, e in enumerate(items)]}

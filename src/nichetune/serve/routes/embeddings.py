"""``POST /v1/embeddings``: mean-pooled, L2-normalised sentence embeddings from an encoder (a bare one, or the
encoder inside a classifier run with its adapter), as floats or as base64 little-endian float32."""

import base64
import time

import numpy as np
from fastapi import APIRouter, Request

from ...infer.classify import mean_pool
from ..schemas import EmbeddingRequest
from ..state import run_model_work
from . import state
from ._inputs import texts_of

router = APIRouter()


def embed(loaded, texts: list[str], max_length: int) -> tuple[np.ndarray, int]:
    """(N, d) unit vectors and the number of tokens read."""
    import torch

    tok = loaded.tokenizer
    batch = tok(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    with torch.inference_mode():
        out = loaded.model(**batch, output_hidden_states=True)
        hidden = out.last_hidden_state if getattr(out, "last_hidden_state", None) is not None else out.hidden_states[-1]
        pooled = torch.nn.functional.normalize(mean_pool(hidden, batch["attention_mask"]).float(), dim=-1)
    return pooled.numpy(), int(batch["attention_mask"].sum())


@router.post("/v1/embeddings")
async def embeddings(body: EmbeddingRequest, request: Request) -> dict:
    s = state(request)
    target = s.target(body.model, "embeddings")
    texts = texts_of(body.input, s.config.max_inputs)
    started = time.perf_counter()

    def work():
        with s.pool.use(target.name) as loaded:
            return embed(loaded, texts, target.max_length)

    vectors, tokens = await run_model_work(s, request, target.name, work)
    if body.encoding_format == "base64":
        items = [base64.b64encode(v.astype("<f4").tobytes()).decode() for v in vectors]
    else:
        items = [v.tolist() for v in vectors]
    s.record(request, model=target.name, route="/v1/embeddings", status=200, started=started,
             request_body={"input": texts}, response_body={"dimensions": int(vectors.shape[1])})
    return {"object": "list", "model": target.name, "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            "data": [{"object": "embedding", "index": i, "embedding": e} for i, e in enumerate(items)]}

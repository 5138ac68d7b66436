"""``POST /v1/classify``: calibrated label probabilities, the conformal prediction set and whether to abstain.

Concurrent requests for one model are micro-batched into shared forward passes. Answers come from
``infer.calibrated.calibrated_predictions``, the function ``nichetune classify`` prints, on the same logits.
"""

import asyncio
import time
import uuid

from fastapi import APIRouter, Request

from ...errors import NichetuneError
from ...infer.calibrated import calibrated_predictions
from ..errors import ApiError
from ..pool import MAX_PADDING
from ..schemas import ClassifyRequest
from ..state import unavailable
from . import state
from ._inputs import texts_of

router = APIRouter()


def _run_batch(s, target):
    def run(texts: list[str]) -> list[dict]:
        from ...tasks.scoring import classifier_logits

        with s.pool.use(target.name) as loaded:
            logits = (loaded.logits(texts) if loaded.logits is not None else
                      classifier_logits(loaded.model, loaded.tokenizer, texts, max_length=target.max_length,
                                        batch_size=s.config.batch_size, max_padding=MAX_PADDING))
        return calibrated_predictions(logits, target.labels, target.calibration)
    return run


@router.post("/v1/classify")
async def classify(body: ClassifyRequest, request: Request) -> dict:
    s = state(request)
    target = s.target(body.model, "classify")
    texts = texts_of(body.input, s.config.max_inputs)
    started = time.perf_counter()
    try:
        answers = await asyncio.wait_for(s.batcher(target.name, _run_batch(s, target)).submit(texts),
                                         timeout=s.config.timeout_s)
    except TimeoutError:
        s.metrics.inc("nichetune_stopped_total", reason="timeout")
        raise ApiError(504, "the request ran past the server's time limit", code="timeout") from None
    except NichetuneError as exc:
        raise unavailable(exc) from exc
    s.metrics.inc("nichetune_classified_texts_total", len(texts), model=target.name)
    data = [{"index": i, "object": "classification", **a} for i, a in enumerate(answers)]
    s.record(request, model=target.name, route="/v1/classify", status=200, started=started,
             request_body={"input": texts}, response_body=[{k: a[k] for k in ("label", "probabilities", "abstain")}
                                                           for a in answers])
    return {"id": f"clf-{uuid.uuid4().hex}", "object": "list", "model": target.name, "data": data,
            "calibration": target.calibration.as_dict() if target.calibration else None}

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
from ..experiments import assign
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
            if loaded.lexical is not None:
                logits = loaded.lexical.apply(texts, logits)
        return calibrated_predictions(logits, target.labels, target.calibration)
    return run


def _slices(body: ClassifyRequest, n: int) -> list[dict]:
    if body.slices is None:
        return [{}] * n
    if isinstance(body.slices, dict):
        return [body.slices] * n
    if len(body.slices) != n:
        raise ApiError(422, f"'slices' holds {len(body.slices)} objects for {n} inputs; give one per input, or one "
                            "object for all", code="slices_mismatch", param="slices")
    return body.slices


async def _answer(s, target, texts: list[str]) -> list[dict]:
    try:
        return await asyncio.wait_for(s.batcher(target.name, _run_batch(s, target)).submit(texts),
                                      timeout=s.config.timeout_s)
    except TimeoutError:
        s.metrics.inc("nichetune_stopped_total", reason="timeout")
        raise ApiError(504, "the request ran past the server's time limit", code="timeout") from None
    except NichetuneError as exc:
        raise unavailable(exc) from exc


def _items(target, texts, answers, slices, **extra) -> list[dict]:
    return [{"text": t, "label": a["label"], "confidence": a["confidence"], "probabilities": a["probabilities"],
             "prediction_set": a.get("prediction_set"), "abstain": a.get("abstain"), "slices": sl,
             "version": target.version, **extra} for t, a, sl in zip(texts, answers, slices, strict=True)]


async def _shadow(s, request, challenger, texts, slices, experiment: str) -> None:
    """The challenger's answers to the same texts, logged as shadow answers (never returned; errors only counted)."""
    started = time.perf_counter()
    try:
        answers = await _answer(s, challenger, texts)
    except Exception:  # a failing challenger must never touch the champion's traffic
        s.metrics.inc("nichetune_shadow_failures_total", model=challenger.name)
        return
    s.record(request, model=challenger.name, route="/v1/classify#shadow", status=200, started=started,
             request_body={"input": texts}, response_body=[{"label": a["label"]} for a in answers],
             items=_items(challenger, texts, answers, slices, experiment=experiment, arm=challenger.name,
                          shadow=True))


@router.post("/v1/classify")
async def classify(body: ClassifyRequest, request: Request) -> dict:
    s = state(request)
    texts = texts_of(body.input, s.config.max_inputs)
    slices = _slices(body, len(texts))
    experiment, arm = None, None
    if body.model in s.config.experiments:  # an experiment's name: one of its arms answers, the same for a user
        experiment = body.model
        unit = body.user or request.scope.get("state", {}).get("request_id") or uuid.uuid4().hex
        arm = assign(s.config.experiments[experiment], unit)
    target = s.target(arm or body.model, "classify")
    started = time.perf_counter()
    answers = await _answer(s, target, texts)
    s.metrics.inc("nichetune_classified_texts_total", len(texts), model=target.name)
    data = [{"index": i, "object": "classification", **a} for i, a in enumerate(answers)]
    s.record(request, model=target.name, route="/v1/classify", status=200, started=started,
             request_body={"input": texts}, response_body=[{k: a[k] for k in ("label", "probabilities", "abstain")}
                                                           for a in answers],
             items=_items(target, texts, answers, slices, experiment=experiment, arm=arm, unit=body.user))
    challenger = s.config.shadows.get(target.name)
    if challenger:
        task = asyncio.create_task(_shadow(s, request, s.targets[challenger], texts, slices, f"shadow:{target.name}"))
        s.background.add(task)
        task.add_done_callback(s.background.discard)
    return {"id": f"clf-{uuid.uuid4().hex}", "object": "list", "model": target.name, "data": data,
            "calibration": target.calibration.as_dict() if target.calibration else None,
            **({"experiment": {"name": experiment, "arm": arm}} if experiment else {})}

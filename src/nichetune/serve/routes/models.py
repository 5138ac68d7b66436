"""``GET /v1/models`` and ``GET /v1/models/{model}``: what is served, OpenAI's shape plus what each model answers."""

import time

from fastapi import APIRouter, Request

from ..errors import ApiError
from ..targets import describe
from . import state

router = APIRouter()
STARTED = int(time.time())


def _card(target) -> dict:
    return {"id": target.name, "object": "model", "created": STARTED, "owned_by": "nichetune", **describe(target)}


@router.get("/v1/models")
async def list_models(request: Request) -> dict:
    return {"object": "list", "data": [_card(t) for t in state(request).targets.values()]}


@router.get("/v1/models/{model}")
async def get_model(model: str, request: Request) -> dict:
    target = state(request).targets.get(model)
    if target is None:
        raise ApiError(404, f"the model {model!r} is not served here", code="model_not_found", param="model")
    return _card(target)

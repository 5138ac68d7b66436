"""``GET /metrics``: Prometheus text format, behind a key like every other route but ``/health``."""

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from . import state

router = APIRouter()


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(request: Request) -> PlainTextResponse:
    return PlainTextResponse(state(request).metrics.render(), media_type="text/plain; version=0.0.4")

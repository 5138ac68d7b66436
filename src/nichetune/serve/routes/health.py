"""``GET /health``: the one route without a key, for load balancers and process managers; it says nothing private."""

import os

from fastapi import APIRouter, Request

from . import state

router = APIRouter()


@router.get("/health")
async def health(request: Request) -> dict:
    s = state(request)
    return {"status": "ok", "models": len(s.targets), "loaded": len(s.pool.loaded), "pid": os.getpid()}

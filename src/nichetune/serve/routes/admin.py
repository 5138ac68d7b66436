"""Admin routes (a key with ``admin`` rights): which models are loaded, and loading or unloading one now.

Only the targets the server was started with can be loaded: no request names a path on the server's disk.
"""

from fastapi import APIRouter, Request

from ..errors import ApiError
from ..state import run_model_work
from . import state

router = APIRouter(prefix="/admin")


def _admin(request: Request):
    key = request.scope.get("state", {}).get("api_key")
    if key is None or not key.admin:
        raise ApiError(403, "this route needs a key with admin rights (nichetune keys create FILE --name N --admin)",
                       code="admin_required")
    s = state(request)
    return s


def _status(s) -> dict:
    return {"memory_budget_bytes": s.pool.budget, "bytes_held": s.pool.used_bytes(), "evictions": s.pool.evictions,
            "models": s.pool.status()}


def _known(s, name: str) -> None:
    if name not in s.targets:
        raise ApiError(404, f"the model {name!r} is not one of this server's targets", code="model_not_found",
                       param="model")


@router.get("/models")
async def models(request: Request) -> dict:
    return _status(_admin(request))


@router.post("/models/{model}/load")
async def load(model: str, request: Request) -> dict:
    s = _admin(request)
    _known(s, model)
    await run_model_work(s, request, model, lambda: s.pool.load(model))
    return _status(s)


@router.post("/models/{model}/unload")
async def unload(model: str, request: Request) -> dict:
    s = _admin(request)
    _known(s, model)
    was_loaded = await run_model_work(s, request, model, lambda: s.pool.unload(model))
    return {**_status(s), "unloaded": was_loaded}

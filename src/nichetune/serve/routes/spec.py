"""``GET /openapi.json``: the OpenAPI spec, behind a key (the interactive docs pages are not mounted)."""

from fastapi import APIRouter, Request

router = APIRouter()


@router.get("/openapi.json", include_in_schema=False)
async def openapi(request: Request) -> dict:
    return request.app.openapi()

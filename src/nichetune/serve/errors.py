"""Errors in OpenAI's schema: ``{"error": {"message", "type", "param", "code"}}``, with the HTTP status to match."""

from __future__ import annotations

import json

TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error", 404: "not_found_error",
         405: "invalid_request_error", 413: "invalid_request_error", 422: "invalid_request_error",
         429: "rate_limit_error", 500: "server_error", 503: "server_error", 504: "timeout_error"}


class ApiError(Exception):
    """An error a route answers with; ``code`` is a stable machine-readable reason."""

    def __init__(self, status: int, message: str, *, code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param
        self.headers = headers or {}


def error_body(status: int, message: str, code: str | None = None, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": TYPES.get(status, "invalid_request_error"), "param": param,
                      "code": code}}


async def send_error(send, status: int, message: str, code: str | None = None,
                     headers: dict[str, str] | None = None) -> None:
    """Answer an ASGI request with an OpenAI-style error, from a middleware (before any route ran)."""
    body = json.dumps(error_body(status, message, code)).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


def install_handlers(app) -> None:
    """Route every error through the OpenAI schema: ours, validation errors, unknown routes, and the unexpected."""
    import logging

    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from starlette.exceptions import HTTPException

    log = logging.getLogger("nichetune.serve")

    @app.exception_handler(ApiError)
    async def api_error(request, exc: ApiError):
        return JSONResponse(error_body(exc.status, exc.message, exc.code, exc.param), exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        message = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: {e.get('msg')}"
                            for e in exc.errors()[:5])
        return JSONResponse(error_body(422, message or "invalid request", "invalid_request", where), 422)

    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        return JSONResponse(error_body(exc.status_code, str(exc.detail), None), exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request, exc: Exception):
        log.exception("unexpected error on %s", request.url.path)
        return JSONResponse(error_body(500, "internal error; the server log has the details", "internal_error"), 500)

"""ASGI layers in front of every route: API keys, the body-size cap, the concurrency gate and request metrics.

They are plain ASGI callables, so they act before FastAPI reads or parses anything: an unauthenticated request
never reaches a route (not even a 404), an oversized body is refused before it is read in full, and a request
over the concurrency limit gets a 429 at once instead of waiting in a queue.
"""

from __future__ import annotations

import time
import uuid

from .errors import send_error
from .keys import KeyRing

OPEN_PATHS = frozenset({"/health"})


def _header(scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value
    return None


class RequireKey:
    """Every path but ``/health`` needs ``Authorization: Bearer KEY``; the key's record goes into request state."""

    def __init__(self, app, keys: KeyRing):
        self.app, self.keys = app, keys

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            return await self.app(scope, receive, send)
        header = (_header(scope, b"authorization") or b"").decode("latin-1")
        scheme, _, token = header.partition(" ")
        record = self.keys.check(token.strip()) if scheme.lower() == "bearer" else None
        if record is None:
            return await send_error(send, 401, "a valid API key is required: send 'Authorization: Bearer KEY'",
                                    "invalid_api_key", {"WWW-Authenticate": "Bearer"})
        scope.setdefault("state", {})["api_key"] = record
        return await self.app(scope, receive, send)


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Refuse bodies over ``limit`` bytes with 413: by Content-Length before reading, else while streaming in."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        message = f"the request body is over the server's limit of {self.limit} bytes"
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await send_error(send, 413, message, "body_too_large")
        seen, started = 0, False

        async def counted_receive():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return msg

        async def watched_send(msg):
            nonlocal started
            started = started or msg["type"] == "http.response.start"
            await send(msg)

        try:
            await self.app(scope, counted_receive, watched_send)
        except _TooLarge:
            if not started:
                await send_error(send, 413, message, "body_too_large")


class ConcurrencyGate:
    """At most ``limit`` model requests at once; the next gets 429 with Retry-After at once.

    The slot is held until the response (a stream included) has been sent, and freed however the request ends.
    ``counter.in_flight`` is the number held now (read by ``/metrics``).
    """

    def __init__(self, app, limit: int, counter, gated=lambda path: path.startswith("/v1/") and path != "/v1/models"):
        self.app, self.limit, self.counter, self.gated = app, limit, counter, gated

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.gated(scope["path"]):
            return await self.app(scope, receive, send)
        if self.counter.in_flight >= self.limit:
            self.counter.metrics.inc("nichetune_rejected_total", reason="concurrency")
            return await send_error(send, 429, f"the server is at its limit of {self.limit} concurrent requests; "
                                               "retry shortly", "too_many_requests", {"Retry-After": "1"})
        self.counter.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.counter.in_flight -= 1


class RequestMetrics:
    """Count requests by route and status and time them (unknown paths are counted as ``other``), and give each
    request an id: the ``x-request-id`` response header, the same as its row in the prediction log."""

    def __init__(self, app, metrics, routes: set[str]):
        self.app, self.metrics, self.routes = app, metrics, routes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        route = scope["path"] if scope["path"] in self.routes else "other"
        status = 500
        start = time.perf_counter()
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id

        async def watched_send(msg):
            nonlocal status
            if msg["type"] == "http.response.start":
                status = msg["status"]
                msg = {**msg, "headers": [*msg.get("headers", []), (b"x-request-id", request_id.encode())]}
            await send(msg)

        try:
            await self.app(scope, receive, watched_send)
        finally:
            self.metrics.inc("nichetune_requests_total", route=route, status=str(status))
            self.metrics.observe("nichetune_request_seconds", time.perf_counter() - start, route=route)

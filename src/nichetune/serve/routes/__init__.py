"""The server's routes, one module each; every module exposes ``router`` and is listed here once.

Every route but ``/health`` sits behind an API key (``middleware.RequireKey``); the route walk test checks each
route this registry mounts.
"""

from __future__ import annotations

import importlib

ROUTE_MODULES = ("health", "models", "chat", "completions", "embeddings", "classify", "feedback", "admin", "metrics",
                 "spec")


def include_all(app) -> None:
    for name in ROUTE_MODULES:
        app.include_router(importlib.import_module(f"{__name__}.{name}").router)


def walk(routes, prefix: str = "") -> list[tuple[str, str]]:
    """Every ``(method, path)`` an app (or router) answers, included routers followed down."""
    found = []
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            context = getattr(route, "include_context", None)
            found += walk(inner.routes, prefix + (getattr(context, "prefix", "") or ""))
        elif hasattr(route, "path"):
            found += [(m, prefix + route.path) for m in sorted(getattr(route, "methods", None) or {"GET"})]
    return found


def state(request):
    """The ``ServerState`` of the app handling ``request``."""
    return request.app.state.server

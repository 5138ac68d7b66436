"""The HTTP server: OpenAI-compatible routes, calibrated classification, API keys, adapters, limits, logging."""

from __future__ import annotations

__all__ = ["ServeConfig", "create_app", "serve", "create_key"]


def __getattr__(name: str):
    if name in ("create_app", "serve"):
        from . import app

        return getattr(app, name)
    if name == "ServeConfig":
        from .config import ServeConfig

        return ServeConfig
    if name == "create_key":
        from .keys import create_key

        return create_key
    raise AttributeError(name)

"""The HTTP app: FastAPI routes composed with the ASGI layers (keys, body cap, concurrency gate, metrics).

``create_app(config)`` builds it; ``serve(config)`` runs it under uvicorn (one process, or ``workers`` processes
that each load their own models).
"""

from __future__ import annotations

import asyncio
import logging
import os
from contextlib import asynccontextmanager

from ..errors import NichetuneError
from .config import ServeConfig
from .errors import install_handlers
from .keys import KeyRing
from .middleware import BodyLimit, ConcurrencyGate, RequestMetrics, RequireKey
from .state import ServerState
from .targets import parse_targets

CONFIG_ENV = "NICHETUNE_SERVE_CONFIG"
log = logging.getLogger("nichetune.serve")


def create_app(config: ServeConfig):
    """The server as an ASGI app (models load on first use, or at startup with ``config.preload``).

    Raises:
        NichetuneError: a target or the key file is unusable.
    """
    from fastapi import FastAPI

    from .routes import include_all, walk

    keys = KeyRing.from_file(config.api_keys)
    targets = {t.name: t for t in parse_targets(config.targets, registry_root=config.registry)}
    _check_experiments(config, targets)

    @asynccontextmanager
    async def lifespan(app):
        if config.preload:  # in each model's own thread: torch run once on the main thread slows every other
            loop = asyncio.get_running_loop()  # thread's torch (measured: 49 -> 33 generated tokens/s)
            for name in targets:
                await loop.run_in_executor(state.executor(name), state.pool.load, name)
        yield
        state.close()

    app = FastAPI(title="nichetune", version="1", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)
    state = ServerState(config, targets)
    app.state.server = state
    install_handlers(app)
    include_all(app)
    routes = {path for _, path in walk(app.routes) if "{" not in path}
    # added innermost first: a request meets the key check, then the body cap, the gate, and the metrics
    app.add_middleware(RequestMetrics, metrics=state.metrics, routes=routes)
    app.add_middleware(ConcurrencyGate, limit=config.concurrency, counter=state)
    app.add_middleware(BodyLimit, limit=config.max_body_bytes)
    app.add_middleware(RequireKey, keys=keys)
    return app


def _check_experiments(config: ServeConfig, targets: dict) -> None:
    """Arms and shadow challengers are served classifiers; an experiment's name is not also a model's.

    Raises:
        NichetuneError: a name that breaks one of these.
    """
    def classifier(name: str, where: str) -> None:
        if name not in targets:
            raise NichetuneError(f"{where} names {name!r}, which is not served",
                                 hint=f"serve it too, or use one of {', '.join(sorted(targets))}")
        if "classify" not in targets[name].capabilities:
            raise NichetuneError(f"{where}: {name} is not a classifier", hint="experiments and shadows classify")

    for name, experiment in config.experiments.items():
        if name in targets:
            raise NichetuneError(f"--experiment {name}: a served model already has that name",
                                 hint="name the experiment differently from its arms")
        for arm in experiment.arms:
            classifier(arm, f"--experiment {name}")
    for model, challenger in config.shadows.items():
        classifier(model, "--shadow")
        classifier(challenger, "--shadow")


def app_from_env():
    """The app for ``uvicorn --factory`` worker processes: the config comes as JSON in ``$NICHETUNE_SERVE_CONFIG``."""
    return create_app(ServeConfig.model_validate_json(os.environ[CONFIG_ENV]))


def serve(config: ServeConfig) -> None:
    """Run the server in the foreground until SIGINT/SIGTERM (then in-flight requests finish).

    Raises:
        NichetuneError: a target or the key file is unusable, or the host is not loopback and not meant to be.
    """
    import uvicorn

    app = create_app(config)  # fail here, before binding a port, when a target or the key file is wrong
    common = dict(host=config.host, port=config.port, log_level="info", timeout_graceful_shutdown=30,
                  server_header=False)
    if config.workers > 1:
        os.environ[CONFIG_ENV] = config.model_dump_json()
        del app
        uvicorn.run("nichetune.serve.app:app_from_env", factory=True, workers=config.workers, **common)
    else:
        uvicorn.run(app, **common)


def check_host(config: ServeConfig, allow_public: bool) -> None:
    if not config.loopback_only and not allow_public:
        raise NichetuneError(f"--host {config.host} would expose the server beyond this machine",
                             hint="pass --public as well to mean it (keys are still required on every route)")

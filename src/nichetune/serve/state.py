"""What every route reads: the model pool, the micro-batchers, metrics, the prediction log and the worker threads.

``run_model_work`` is the one way a route runs model code: in a worker thread, with the request's deadline and
its client watched, so a timeout answers 504 and a client that went away stops the work.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..errors import NichetuneError
from ..hardware import pick_dtype
from ..models.heads import HEADS
from .batching import GenerationQueue, MicroBatcher
from .config import ServeConfig
from .errors import ApiError
from .generation import Cancel, batchable, generate_batch
from .metrics import BATCH_BUCKETS, LATENCY_BUCKETS, Metrics
from .pool import MAX_PADDING, ModelPool, PoolFull
from .targets import ENCODER, Target


def dtype_for(config: ServeConfig):
    def pick(target: Target):
        import torch

        if target.head == ENCODER or HEADS[target.head].fresh:
            return torch.float32  # served probabilities must equal `nichetune classify`
        return pick_dtype(config.dtype, "cpu")
    return pick


def _tasks() -> int:
    try:
        return len(asyncio.all_tasks())
    except RuntimeError:  # read outside the event loop
        return 0


def _rss() -> int:
    import os

    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _metrics(pool: ModelPool, state: ServerState) -> Metrics:
    m = Metrics()
    m.counter("nichetune_requests_total", "HTTP requests by route and status")
    m.histogram("nichetune_request_seconds", "HTTP request duration by route", LATENCY_BUCKETS)
    m.counter("nichetune_rejected_total", "requests refused by a limit, by reason")
    m.counter("nichetune_generated_tokens_total", "completion tokens generated, by model")
    m.counter("nichetune_prompt_tokens_total", "prompt tokens read, by model")
    m.counter("nichetune_stopped_total", "requests stopped early, by reason")
    m.counter("nichetune_classified_texts_total", "texts classified, by model")
    m.histogram("nichetune_generation_batch_streams", "sequences decoded together per generate call",
                BATCH_BUCKETS)
    m.histogram("nichetune_classify_batch_texts", "texts per micro-batched classifier forward pass", BATCH_BUCKETS)
    m.gauge("nichetune_in_flight", "model requests running now", lambda: state.in_flight)
    m.gauge("nichetune_event_loop_tasks", "asyncio tasks alive in the server's event loop", _tasks)
    m.gauge("process_resident_memory_bytes", "resident memory of the server process", _rss)
    m.gauge("nichetune_models_loaded", "models loaded now", lambda: len(pool.loaded))
    m.gauge("nichetune_model_bytes", "parameter bytes held by loaded models", pool.used_bytes)
    m.gauge("nichetune_model_memory_budget_bytes", "the memory budget for loaded models", lambda: pool.budget)
    m.gauge("nichetune_model_loads_total", "model loads since start", lambda: pool.loads)
    m.gauge("nichetune_model_evictions_total", "least-recently-used evictions since start", lambda: pool.evictions)
    m.gauge("nichetune_prediction_log_dropped_total", "prediction log records dropped (queue full or write failed)",
            lambda: state.log.dropped if state.log else 0)
    return m


@dataclass
class ServerState:
    config: ServeConfig
    targets: dict[str, Target]
    pool: ModelPool = field(init=False)
    metrics: Metrics = field(init=False)
    executors: dict[str, ThreadPoolExecutor] = field(default_factory=dict)
    log: object = None
    in_flight: int = 0
    batchers: dict[str, MicroBatcher] = field(default_factory=dict)
    generation_queues: dict[str, GenerationQueue] = field(default_factory=dict)
    indexes: dict[str, object] = field(default_factory=dict)  # retrieval indexes by name
    background: set = field(default_factory=set)  # shadow answers in flight (kept so they are not collected)

    def __post_init__(self) -> None:
        self.pool = ModelPool(list(self.targets.values()), self.config.memory_budget_mb * 2**20,
                              dtype_for(self.config), self.config.runtime, MAX_PADDING)
        self.metrics = _metrics(self.pool, self)
        if self.config.indexes:  # checked now, so a wrong folder stops the server before it binds a port
            from ..retrieval.index import load_index

            self.indexes = {name: load_index(folder) for name, folder in self.config.indexes.items()}
        if self.config.prediction_log:
            from ..prediction_log import PredictionLog

            self.log = PredictionLog(self.config.prediction_log, mask_pii=self.config.log_pii == "mask")
            for name, experiment in self.config.experiments.items():
                self.log.experiment(name, experiment.shares(), experiment.salt)

    def target(self, name: str, capability: str) -> Target:
        target = self.targets.get(name)
        if target is None:
            raise ApiError(404, f"the model {name!r} is not served here; see GET /v1/models", code="model_not_found",
                           param="model")
        if capability not in target.capabilities:
            raise ApiError(400, f"{name} is a {target.head} model and cannot answer {capability} requests; it "
                                f"answers {', '.join(target.capabilities)}", code="unsupported_for_model",
                           param="model")
        return target

    def executor(self, name: str) -> ThreadPoolExecutor:
        """The one thread that runs ``name``'s model work. Its group lock serializes the work anyway, and torch on
        a CPU is faster when the same thread keeps calling it (its OpenMP pool stays warm): measured, a pool of
        four threads added 5 ms to every 17 ms classification."""
        if name not in self.executors:
            self.executors[name] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"nichetune-{name}"[:15])
        return self.executors[name]

    def generation_queue(self, name: str) -> GenerationQueue:
        """Generation jobs for ``name``, decoded together while the model is busy."""
        if name not in self.generation_queues:
            def run_jobs(jobs):
                with self.pool.use(name) as loaded:
                    return generate_batch(loaded.model, loaded.tokenizer, jobs)

            self.generation_queues[name] = GenerationQueue(
                run_jobs, self.executor(name), self.config.max_streams_per_batch, batchable,
                lambda n: self.metrics.observe("nichetune_generation_batch_streams", n))
        return self.generation_queues[name]

    def batcher(self, name: str, run_batch) -> MicroBatcher:
        if name not in self.batchers:
            self.batchers[name] = MicroBatcher(run_batch, self.executor(name), self.config.batch_size,
                                               lambda n: self.metrics.observe("nichetune_classify_batch_texts", n))
        return self.batchers[name]

    def record(self, request, *, model: str, route: str, status: int, started: float, request_body, response_body,
               items: list[dict] | None = None):
        if self.log is None:
            return
        key = request.scope.get("state", {}).get("api_key")
        request_id = request.scope.get("state", {}).get("request_id") or uuid.uuid4().hex
        self.log.write(request_id=request_id, model=model, route=route,
                       status=status, latency_ms=1000 * (time.perf_counter() - started), request=request_body,
                       response=response_body, key_name=key.name if key else None, items=items)

    def close(self) -> None:
        for executor in self.executors.values():
            executor.shutdown(wait=False, cancel_futures=True)
        if self.log is not None:
            self.log.close()


async def watch(request, future: asyncio.Future, cancel: Cancel) -> None:
    """Wait for ``future`` while watching the client and the deadline.

    Raises:
        ApiError: 504 when the deadline passed (the work is told to stop and its slot is freed).
    """
    while not future.done():
        await asyncio.wait({future}, timeout=0.1)
        if future.done():
            break
        if time.monotonic() > cancel.deadline:
            cancel.cancel("timeout")
        elif await request.is_disconnected():
            cancel.cancel("client gone")
            raise ApiError(499, "the client went away", code="client_closed")
        if cancel.reason == "timeout":
            break
    if cancel.reason == "timeout":  # noticed here or by the work itself, which then ended early
        raise ApiError(504, "the request ran past the server's time limit", code="timeout")


def unavailable(exc: NichetuneError) -> ApiError:
    """A model that cannot be loaded now (over the memory budget, a load that failed) as a 503 with the reason."""
    return ApiError(503, exc.message + (f" (how to fix: {exc.hint})" if exc.hint else ""),
                    code="memory_budget" if isinstance(exc, PoolFull) else "model_unavailable",
                    headers={"Retry-After": "5"})


async def await_model(state: ServerState, request, awaitable, cancel: Cancel):
    """Await model work under the request's deadline and client; pool errors become 503.

    Raises:
        ApiError: 504 past the deadline, 499 when the client went away, 503 when the model does not fit.
    """
    future = asyncio.ensure_future(awaitable)
    try:
        await watch(request, future, cancel)
        return future.result()
    except NichetuneError as exc:
        raise unavailable(exc) from exc
    except ApiError as exc:
        if exc.code in ("timeout", "client_closed"):
            state.metrics.inc("nichetune_stopped_total", reason=cancel.reason or exc.code)
        raise
    finally:
        if not future.done():
            future.cancel()  # queued work that has not started never starts


async def run_model_work(state: ServerState, request, name: str, fn, cancel: Cancel | None = None):
    """Run blocking ``fn()`` in model ``name``'s thread under the request's deadline (see ``await_model``)."""
    cancel = cancel or Cancel(deadline=time.monotonic() + state.config.timeout_s)
    loop = asyncio.get_running_loop()
    return await await_model(state, request, loop.run_in_executor(state.executor(name), fn), cancel)

"""What ``/v1/chat/completions`` and ``/v1/completions`` share: token caps, generating ``n`` choices per prompt,
the JSON answer, and the SSE stream (``stream_options.include_usage`` as OpenAI specifies it: every chunk
carries ``usage: null`` and one last chunk, with no choices, carries the usage; then ``data: [DONE]``)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from .errors import ApiError, error_body
from .generation import Cancel, Generated, Job, Sampling
from .state import ServerState, await_model, run_model_work


@dataclass(frozen=True)
class Shape:
    """How one endpoint names its objects and wraps text."""

    prefix: str
    object: str
    chunk_object: str
    choice: Callable[[int, str, str | None], dict]  # full answer
    delta: Callable[[int, str | None, str | None, bool], dict]  # stream chunk choice (index, text, finish, first)


def _context(model) -> int:
    config = getattr(model, "config", None)
    return int(getattr(config, "max_position_embeddings", 0) or 2048)


def prepare(state: ServerState, request, target, body, make_ids) -> Callable[[], tuple[list, int]]:
    """The blocking work that tokenizes the prompts and checks the caps: it returns ``(ids per prompt, max_tokens)``.

    Raises:
        ApiError: 422 when max_tokens is over the server's cap or prompt + completion over the model's context.
    """
    cap = state.config.max_tokens
    asked = getattr(body, "max_completion_tokens", None) or body.max_tokens
    if asked is not None and asked > cap:
        raise ApiError(422, f"max_tokens {asked} is over this server's cap of {cap}", code="max_tokens_over_limit",
                       param="max_tokens")

    def work():
        with state.pool.use(target.name) as loaded:
            ids = make_ids(loaded.tokenizer)
            context = _context(loaded.model)
        longest = max(i.shape[1] for i in ids)
        room = context - longest
        wanted = asked if asked is not None else min(cap, room)
        if room < 1 or wanted > room:
            raise ApiError(422, f"the prompt has {longest} tokens and {wanted} more were asked for; the model's "
                                f"context holds {context}", code="context_length_exceeded", param="messages")
        return ids, wanted
    return work


def _sampling(body, max_tokens: int, choice: int) -> Sampling:
    seed = None if body.seed is None else body.seed + choice
    return Sampling(max_tokens, body.temperature, body.top_p, body.stops(), seed)


def _usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def _count(state: ServerState, model: str, prompt: int, completion: int) -> None:
    state.metrics.inc("nichetune_prompt_tokens_total", prompt, model=model)
    state.metrics.inc("nichetune_generated_tokens_total", completion, model=model)


def _jobs(body, ids: list, max_tokens: int, cancel: Cancel, on_piece=None) -> list[Job]:
    """One job per (prompt, choice), in choice-index order."""
    jobs = []
    for prompt_ids in ids:
        for i in range(body.n):
            k = len(jobs)
            jobs.append(Job(prompt_ids, _sampling(body, max_tokens, i), cancel,
                            (lambda piece, k=k: on_piece(k, piece)) if on_piece else (lambda piece: None)))
    return jobs


async def answer(state: ServerState, request, target, body, make_ids, shape: Shape, logged,
                 decorate: Callable[[list[str]], dict] | None = None) -> dict:
    """The whole answer as one JSON object; ``decorate(texts)`` adds fields to it (retrieval's citations)."""
    started = time.perf_counter()
    ids, max_tokens = await run_model_work(state, request, target.name, prepare(state, request, target, body, make_ids))
    cancel = Cancel(deadline=time.monotonic() + state.config.timeout_s)
    queue = state.generation_queue(target.name)
    results = await await_model(state, request, asyncio.gather(*(queue.submit(j) for j in
                                                                  _jobs(body, ids, max_tokens, cancel))), cancel)
    prompt_tokens = sum(i.shape[1] for i in ids) * body.n
    completion_tokens = sum(g.completion_tokens for g in results)
    _count(state, target.name, prompt_tokens, completion_tokens)
    reply = {"id": f"{shape.prefix}-{uuid.uuid4().hex}", "object": shape.object, "created": int(time.time()),
             "model": target.name, "choices": [shape.choice(k, g.text, g.finish_reason) for k, g in enumerate(results)],
             "usage": _usage(prompt_tokens, completion_tokens)}
    if decorate:
        reply.update(decorate([g.text for g in results]))
    state.record(request, model=target.name, route=request.url.path, status=200, started=started,
                 request_body=logged, response_body=[g.text for g in results])
    return reply


def _sse(payload: dict | str) -> bytes:
    return f"data: {payload if isinstance(payload, str) else json.dumps(payload)}\n\n".encode()


async def stream(state: ServerState, request, target, body, make_ids, shape: Shape, logged,
                 decorate: Callable[[list[str]], dict] | None = None):
    """The answer as server-sent events; returns the async iterator a StreamingResponse sends. ``decorate(texts)``
    fields come in one last chunk with no choices, before the usage chunk."""
    started = time.perf_counter()
    ids, max_tokens = await run_model_work(state, request, target.name, prepare(state, request, target, body, make_ids))
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    cancel = Cancel(deadline=time.monotonic() + state.config.timeout_s)
    loop = asyncio.get_running_loop()
    events: asyncio.Queue = asyncio.Queue()
    jobs = _jobs(body, ids, max_tokens, cancel,
                 lambda k, piece: loop.call_soon_threadsafe(events.put_nowait, ("piece", k, piece)))
    base = {"id": f"{shape.prefix}-{uuid.uuid4().hex}", "object": shape.chunk_object, "created": int(time.time()),
            "model": target.name}
    extra = {"usage": None} if include_usage else {}

    def finished(k: int, task: asyncio.Task) -> None:
        if task.cancelled():
            return
        events.put_nowait(("error", task.exception()) if task.exception() else ("done", k, task.result()))

    async def events_out():
        queue = state.generation_queue(target.name)
        tasks = [asyncio.ensure_future(queue.submit(job)) for job in jobs]
        for k, task in enumerate(tasks):
            task.add_done_callback(lambda t, k=k: finished(k, t))
        done_all, texts, completion, remaining = False, {}, 0, len(jobs)
        try:
            for k in range(len(jobs)):
                yield _sse({**base, "choices": [shape.delta(k, None, None, True)], **extra})
            while remaining:
                try:
                    event = await asyncio.wait_for(events.get(), timeout=0.25)
                except TimeoutError:
                    if cancel.stopped:  # deadline passed while waiting for the model
                        break
                    continue
                kind = event[0]
                if kind == "piece":
                    texts[event[1]] = texts.get(event[1], "") + event[2]
                    yield _sse({**base, "choices": [shape.delta(event[1], event[2], None, False)], **extra})
                elif kind == "done":
                    g: Generated = event[2]
                    completion += g.completion_tokens
                    remaining -= 1
                    if g.finish_reason != "cancelled":
                        yield _sse({**base, "choices": [shape.delta(event[1], None, g.finish_reason, False)],
                                    **extra})
                elif kind == "error":
                    raise event[1]
            if cancel.reason == "timeout":
                state.metrics.inc("nichetune_stopped_total", reason="timeout")
                yield _sse(error_body(504, "the request ran past the server's time limit", "timeout"))
            else:
                prompt_tokens = sum(i.shape[1] for i in ids) * body.n
                _count(state, target.name, prompt_tokens, completion)
                if decorate:
                    yield _sse({**base, "choices": [], **decorate([texts.get(k, "") for k in range(len(jobs))]),
                                **({"usage": None} if include_usage else {})})
                if include_usage:
                    yield _sse({**base, "choices": [], "usage": _usage(prompt_tokens, completion)})
            yield _sse("[DONE]")
            done_all = True
        except ApiError as exc:
            yield _sse(error_body(exc.status, exc.message, exc.code))
            yield _sse("[DONE]")
            done_all = True
        except Exception:
            logging.getLogger("nichetune.serve").exception("generation failed for %s", target.name)
            yield _sse(error_body(500, "generation failed; the server log has the details", "internal_error"))
            yield _sse("[DONE]")
            done_all = True
        finally:
            if not done_all:  # the client went away (or the server is stopping): stop generating now
                cancel.cancel("client gone")
                state.metrics.inc("nichetune_stopped_total", reason="client gone")
            for task in tasks:
                task.cancel()  # jobs still queued never start; a running row stops at its next token
            state.record(request, model=target.name, route=request.url.path, status=200 if done_all else 499,
                         started=started, request_body=logged, response_body=[texts[k] for k in sorted(texts)])
    return events_out()

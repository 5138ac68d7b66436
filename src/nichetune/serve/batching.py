"""Micro-batching: concurrent classify requests for one model share one forward pass.

No request waits on a timer. The first request of an idle model runs at once; requests that arrive while a
batch is running queue up and go together in the next pass (up to ``max_texts``), so batches grow exactly
when the server is busy. The worker task ends when the queue is empty, so nothing lingers between bursts.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable


class MicroBatcher:
    """``await submit(texts)`` returns ``run_batch(texts)``'s answers for those texts.

    Args:
        run_batch: blocking ``run_batch(texts) -> list`` (one answer per text), run in ``executor``.
        max_texts: the most texts per pass (one request's texts are never split).
        observe: called with each pass's size (metrics).
    """

    def __init__(self, run_batch: Callable[[list[str]], list], executor, max_texts: int,
                 observe: Callable[[int], None] = lambda n: None):
        self.run_batch, self.executor, self.max_texts, self.observe = run_batch, executor, max_texts, observe
        self.pending: deque[tuple[list[str], asyncio.Future]] = deque()
        self.worker: asyncio.Task | None = None

    async def submit(self, texts: list[str]) -> list:
        future = asyncio.get_running_loop().create_future()
        self.pending.append((texts, future))
        if self.worker is None or self.worker.done():
            self.worker = asyncio.create_task(self._drain())
        return await future

    def _take(self) -> list[tuple[list[str], asyncio.Future]]:
        batch, count = [], 0
        while self.pending:
            texts, future = self.pending[0]
            if batch and count + len(texts) > self.max_texts:
                break
            self.pending.popleft()
            if not future.cancelled():  # its client is gone: nothing to compute
                batch.append((texts, future))
                count += len(texts)
        return batch

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self.pending:
            batch = self._take()
            if not batch:
                continue
            texts = [t for item, _ in batch for t in item]
            self.observe(len(texts))
            try:
                answers = await loop.run_in_executor(self.executor, self.run_batch, texts)
            except BaseException as exc:  # every waiting request learns of it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            start = 0
            for item, future in batch:
                if not future.done():
                    future.set_result(answers[start:start + len(item)])
                start += len(item)


class GenerationQueue:
    """``await submit(job)`` returns the job's ``Generated``; jobs waiting together are decoded in one batch.

    As with classification, nothing waits on a timer: a job for an idle model starts at once, and jobs that
    arrive while a batch runs go together into the next one (up to ``max_jobs``, and only jobs ``compatible``
    with the first waiting one; the rest wait for a later batch in arrival order).

    Args:
        run_jobs: blocking ``run_jobs(jobs) -> list[Generated]``, run in ``executor``.
        compatible: ``compatible(first, other)``: may ``other`` share ``first``'s batch.
        observe: called with each batch's size (metrics).
    """

    def __init__(self, run_jobs: Callable[[list], list], executor, max_jobs: int, compatible: Callable,
                 observe: Callable[[int], None] = lambda n: None):
        self.run_jobs, self.executor, self.max_jobs = run_jobs, executor, max_jobs
        self.compatible, self.observe = compatible, observe
        self.pending: deque[tuple[object, asyncio.Future]] = deque()
        self.worker: asyncio.Task | None = None

    async def submit(self, job):
        future = asyncio.get_running_loop().create_future()
        self.pending.append((job, future))
        if self.worker is None or self.worker.done():
            self.worker = asyncio.create_task(self._drain())
        return await future

    def _take(self) -> list[tuple[object, asyncio.Future]]:
        live = [(j, f) for j, f in self.pending if not f.cancelled()]
        if not live:
            self.pending.clear()
            return []
        first = live[0][0]
        batch = [item for item in live if self.compatible(first, item[0])][: self.max_jobs]
        if not batch or batch[0][0] is not first:
            batch = [live[0]]
        taken = {id(f) for _, f in batch}
        self.pending = deque((j, f) for j, f in live if id(f) not in taken)
        return batch

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self.pending:
            batch = self._take()
            if not batch:
                continue
            self.observe(len(batch))
            try:
                results = await loop.run_in_executor(self.executor, self.run_jobs, [j for j, _ in batch])
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

"""Batching requests that arrive together: classify texts share one forward pass, generations one ``generate`` call.

No request waits on a timer. The first request of an idle model runs at once; requests that arrive while a
batch is running queue up and go together in the next one, so batches grow exactly when the server is busy.
The worker task ends when the queue is empty, so nothing lingers between bursts.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable


class _BatchQueue:
    """What both queues share: ``submit`` an item, and a worker that runs ``run(inputs)`` in ``executor`` for each
    batch ``_take`` picks and hands every waiting request its share of the answers (or the error)."""

    def __init__(self, run: Callable[[list], list], executor, observe: Callable[[int], None]):
        self.run, self.executor, self.observe = run, executor, observe
        self.pending: deque[tuple[object, asyncio.Future]] = deque()
        self.worker: asyncio.Task | None = None

    async def submit(self, item):
        future = asyncio.get_running_loop().create_future()
        self.pending.append((item, future))
        if self.worker is None or self.worker.done():
            self.worker = asyncio.create_task(self._drain())
        return await future

    def _take(self) -> list[tuple[object, asyncio.Future]]:
        raise NotImplementedError

    def _inputs(self, items: list) -> list:
        return items

    def _split(self, items: list, results: list) -> list:
        return results

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self.pending:
            batch = self._take()
            if not batch:
                continue
            items = [item for item, _ in batch]
            inputs = self._inputs(items)
            self.observe(len(inputs))
            try:
                results = await loop.run_in_executor(self.executor, self.run, inputs)
            except BaseException as exc:  # every waiting request learns of it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for (_, future), answer in zip(batch, self._split(items, results), strict=True):
                if not future.done():
                    future.set_result(answer)


class MicroBatcher(_BatchQueue):
    """``await submit(texts)`` returns ``run_batch(texts)``'s answers for those texts.

    Args:
        run_batch: blocking ``run_batch(texts) -> list`` (one answer per text), run in ``executor``.
        max_texts: the most texts per pass (one request's texts are never split).
        observe: called with each pass's size (metrics).
    """

    def __init__(self, run_batch: Callable[[list[str]], list], executor, max_texts: int,
                 observe: Callable[[int], None] = lambda n: None):
        super().__init__(run_batch, executor, observe)
        self.max_texts = max_texts

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

    def _inputs(self, items: list[list[str]]) -> list[str]:
        return [t for texts in items for t in texts]

    def _split(self, items: list[list[str]], results: list) -> list[list]:
        out, start = [], 0
        for texts in items:
            out.append(results[start:start + len(texts)])
            start += len(texts)
        return out


class GenerationQueue(_BatchQueue):
    """``await submit(job)`` returns the job's ``Generated``; jobs waiting together are decoded in one batch
    (up to ``max_jobs``, and only jobs ``compatible`` with the first waiting one; the rest wait for a later batch
    in arrival order).

    Args:
        run_jobs: blocking ``run_jobs(jobs) -> list[Generated]``, run in ``executor``.
        compatible: ``compatible(first, other)``: may ``other`` share ``first``'s batch.
        observe: called with each batch's size (metrics).
    """

    def __init__(self, run_jobs: Callable[[list], list], executor, max_jobs: int, compatible: Callable,
                 observe: Callable[[int], None] = lambda n: None):
        super().__init__(run_jobs, executor, observe)
        self.max_jobs, self.compatible = max_jobs, compatible

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

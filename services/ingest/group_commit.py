"""Group commit: the writes of concurrent requests share one transaction.

A request hands its item to :meth:`GroupCommit.submit` and waits. When no flush is running,
the items waiting are flushed at once in one call (one transaction, one statement per table);
items that arrive meanwhile wait for that flush to end and then go together in the next. A
lone request is flushed right away (no timer, no added latency); under load a transaction
carries as many requests as arrived during the previous one, so the per-transaction cost
(round trips, commit, statement overhead) is paid once per batch instead of once per request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Flush = Callable[[list[T]], Awaitable[Sequence[R | Exception]]]


class GroupCommit(Generic[T, R]):
    """Batches :meth:`submit` calls into calls of ``flush``.

    ``flush`` gets the waiting items in arrival order and returns one result per item, or the
    exception that item failed with (so one bad item does not fail its neighbours); an
    exception ``flush`` raises fails every item of the batch. The flush runs in a task of its
    own: a waiting request that is cancelled (its client went away) cancels neither the
    batch nor the other requests in it.
    """

    def __init__(self, flush: Flush[T, R]) -> None:
        self._flush = flush
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._running: asyncio.Task[None] | None = None
        self.batches = 0  # flushes so far (for tests and the benchmark's curiosity)

    async def submit(self, item: T) -> R:
        """Flush ``item`` with whatever else is waiting; its result, or its exception."""
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._running is None:
            self._start()
        return await asyncio.shield(future)

    def _start(self) -> None:
        batch, self._waiting = self._waiting, []
        self._running = asyncio.create_task(self._run(batch))
        self._running.add_done_callback(self._next)

    def _next(self, _: asyncio.Task[None]) -> None:
        self._running = None
        if self._waiting:
            self._start()

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        self.batches += 1
        try:
            results = await self._flush([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"flush returned {len(results)} results for {len(batch)}")
        except BaseException as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

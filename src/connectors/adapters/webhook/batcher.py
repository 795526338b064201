"""Group commit: many concurrent callers, one database round trip per batch.

A :class:`Coalescer` turns ``await coalescer.submit(item)`` from many tasks into calls of one
batch function over every item submitted meanwhile::

    task A ─ submit(a) ┐
    task B ─ submit(b) ┼─▶ run([a, b, c]) ─ one transaction ─▶ A, B, C resume with their result
    task C ─ submit(c) ┘      (items submitted while it runs form the next batch)

No timer decides when a batch goes: the first item starts a flusher that yields once to the
event loop (so callers of the same tick join) and then runs the batch; at most one batch is in
flight, and whatever arrives while it runs waits for the next one. Under light load a batch is one
item and nothing waits; under heavy load batches grow to ``max_batch`` by themselves. A caller
resumes only after its batch function returned, so "submitted" never means "written": when the
batch function commits a transaction, a caller that resumed knows its item is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["Coalescer"]

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    """Runs ``run(items)`` over items submitted concurrently; each caller gets its own result.

    ``run`` returns one result per item, in order. When it raises, every caller of that batch
    gets the exception (and a later batch starts afresh). Bound to the event loop of its first
    use; after that loop closes, the next use binds it to the new loop.
    """

    def __init__(
        self, run: Callable[[list[T]], Awaitable[Sequence[R]]], *, max_batch: int = 256
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be ≥ 1")
        self._run = run
        self.max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Batches run so far (for tests and metrics).
        self.batches = 0

    async def submit(self, item: T) -> R:
        """Add ``item`` to the next batch and wait for its result."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None and not self._loop.is_closed() and self._flusher:
                raise RuntimeError("a Coalescer is in use on another event loop")
            self._loop, self._pending, self._flusher = loop, [], None
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((item, future))
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush(), name="coalescer-flush")
        return await future

    async def _flush(self) -> None:
        try:
            await asyncio.sleep(0)  # one turn of the loop: callers of the same tick join in
            while self._pending:
                batch = self._pending[: self.max_batch]
                del self._pending[: self.max_batch]
                live = [(item, fut) for item, fut in batch if not fut.cancelled()]
                if live:
                    await self._run_batch(live)
        except asyncio.CancelledError:  # the loop is going away: nobody will run the rest
            waiting, self._pending = self._pending, []
            for _, fut in waiting:
                fut.cancel()
            raise
        finally:
            self._flusher = None

    async def _run_batch(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        self.batches += 1
        try:
            results = await self._run([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} returned {len(results)} results")
        except asyncio.CancelledError:
            for _, fut in batch:
                if not fut.done():
                    fut.cancel()
            raise
        except Exception as exc:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
            return
        for (_, fut), result in zip(batch, results, strict=True):
            if not fut.done():
                fut.set_result(result)

    async def aclose(self) -> None:
        """Wait for the batch in flight (and any queued behind it) to finish."""
        flusher = self._flusher
        if flusher is not None and self._loop is asyncio.get_running_loop():
            with contextlib.suppress(asyncio.CancelledError):
                await flusher

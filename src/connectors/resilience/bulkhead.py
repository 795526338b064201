"""The bulkhead: a per-key concurrency limit with a bounded queue, local to this process.

At most ``max_concurrent`` attempts run at once per key (the pipeline keys it by tenant, so one
tenant's burst cannot starve another's); up to ``max_queue`` more wait in FIFO order, each for at
most its own bound; everything past that is rejected at once with
:class:`~connectors.errors.BulkheadFull` instead of piling up. A released slot is handed straight
to the first live waiter, so a newcomer never overtakes the queue.

The fast path (a free slot, nobody queued) is synchronous: :meth:`Bulkhead.try_acquire` then
:meth:`Bulkhead.release`, no await, no allocation. A bulkhead belongs to one event loop.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Hashable
from typing import Final

from connectors.clock import Clock
from connectors.errors import BulkheadFull
from connectors.resilience.policies import BulkheadPolicy

__all__ = ["Bulkhead", "Compartment"]

_MIN_SWEEP: Final = 1024


class Compartment:
    """One key's slots: in-flight count and the waiters' queue."""

    __slots__ = ("in_flight", "queued", "waiters")

    def __init__(self) -> None:
        self.in_flight = 0
        #: Waiters that have not left the queue yet (live entries of ``waiters``).
        self.queued = 0
        self.waiters: deque[asyncio.Future[None]] = deque()


class Bulkhead:
    """Concurrency limits per key, with a bounded FIFO queue."""

    __slots__ = ("_clock", "_compartments", "_max", "_max_queue", "_sweep_at")

    def __init__(self, policy: BulkheadPolicy, clock: Clock) -> None:
        self._max = policy.max_concurrent
        self._max_queue = policy.max_queue
        self._clock = clock
        self._compartments: dict[Hashable, Compartment] = {}
        self._sweep_at = _MIN_SWEEP

    def compartment(self, key: Hashable) -> Compartment:
        """The key's compartment (created on first use; idle ones are purged lazily)."""
        found = self._compartments.get(key)
        if found is None:
            if len(self._compartments) > self._sweep_at:
                self._sweep()
            found = self._compartments[key] = Compartment()
        return found

    def _sweep(self) -> None:
        for key in [k for k, c in self._compartments.items() if not c.in_flight and not c.queued]:
            del self._compartments[key]
        self._sweep_at = max(_MIN_SWEEP, 2 * len(self._compartments))

    def try_acquire(self, key: Hashable) -> Compartment | None:
        """Take a slot without waiting, or ``None`` when the caller would have to queue."""
        c = self._compartments.get(key) or self.compartment(key)
        if c.in_flight < self._max and not c.queued:
            c.in_flight += 1
            return c
        return None

    async def acquire(self, key: Hashable, *, max_wait: float = math.inf) -> Compartment:
        """Take a slot, queueing for at most ``max_wait`` seconds.

        Raises :class:`~connectors.errors.BulkheadFull` when the queue is full and
        ``TimeoutError`` when the wait runs out (the caller decides what that means).
        """
        c = self.try_acquire(key)
        if c is not None:
            return c
        c = self.compartment(key)
        if c.queued >= self._max_queue:
            raise BulkheadFull(
                f"{c.in_flight} calls in flight and {c.queued} queued: the bulkhead is full",
                hint="reduce concurrency or raise bulkhead.max_concurrent / max_queue",
            )
        if max_wait <= 0:
            raise TimeoutError
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        c.waiters.append(fut)
        c.queued += 1
        watchdog = None if math.isinf(max_wait) else loop.create_task(self._expire(fut, max_wait))
        try:
            await fut
        except BaseException:
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self.release(c)  # we were handed a slot but leave: pass it on
            else:
                fut.cancel()
            raise
        finally:
            c.queued -= 1
            if not c.queued:
                c.waiters.clear()  # only abandoned futures are left
            if watchdog is not None and not watchdog.done():
                watchdog.cancel()
        return c

    async def _expire(self, fut: asyncio.Future[None], seconds: float) -> None:
        await self._clock.sleep(seconds)
        if not fut.done():
            fut.set_exception(TimeoutError())

    def release(self, c: Compartment) -> None:
        """Give the slot back: to the first live waiter, else to the pool."""
        waiters = c.waiters
        while waiters:
            fut = waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                return
        c.in_flight -= 1

    def stats(self, key: Hashable) -> tuple[int, int]:
        """``(in_flight, queued)`` for a key (for gauges and rejection events)."""
        c = self._compartments.get(key)
        return (0, 0) if c is None else (c.in_flight, c.queued)

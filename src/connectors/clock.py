"""Time sources, injectable everywhere time matters.

Policies never call ``time`` or ``asyncio.sleep`` directly: they take a :class:`Clock`. Tests use
:class:`FakeClock`, whose ``sleep`` advances virtual time instantly, so backoff schedules, breaker
timeouts and rate limits are exercised without waiting.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "FakeClock", "SystemClock", "system_clock"]


@runtime_checkable
class Clock(Protocol):
    """A monotonic clock for durations, a wall clock for timestamps, and a sleep."""

    def monotonic(self) -> float:
        """Seconds on a monotonic scale (durations, deadlines, rate limits)."""
        ...

    def time(self) -> float:
        """Seconds since the Unix epoch (timestamps, HTTP dates, token expiry)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait for ``seconds`` (no-op for zero or negative)."""
        ...


class SystemClock:
    """The real clock."""

    __slots__ = ()

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)
        else:
            await asyncio.sleep(0)


system_clock = SystemClock()


class FakeClock:
    """A virtual clock for tests.

    ``sleep`` registers a waiter and yields; when every runnable task is waiting on the clock,
    virtual time jumps to the earliest waiter (``auto_advance``), so concurrent schedules interleave
    in deadline order just as they would in real time, without real waiting. ``advance`` moves time
    by hand.
    """

    def __init__(self, start: float = 1_000.0, *, wall_start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._wall_offset = wall_start - start
        self._waiters: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._driver: asyncio.Task[None] | None = None
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self._now

    def time(self) -> float:
        return self._now + self._wall_offset

    def advance(self, seconds: float) -> None:
        """Move virtual time forward and wake every sleeper whose time has come."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._now += seconds
        self._wake_due()

    def _wake_due(self) -> None:
        while self._waiters and self._waiters[0][0] <= self._now:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        heapq.heappush(self._waiters, (self._now + seconds, next(self._seq), fut))
        if self._driver is None or self._driver.done():
            self._driver = loop.create_task(self._drive())
        await fut

    async def _drive(self) -> None:
        # Let every other runnable task run first; when only clock sleepers remain, jump ahead.
        while self._waiters:
            for _ in range(20):
                await asyncio.sleep(0)
            # drop cancelled waiters
            self._waiters = [w for w in self._waiters if not w[2].done()]
            heapq.heapify(self._waiters)
            if not self._waiters:
                return
            due = self._waiters[0][0]
            if due > self._now:
                self._now = due
            self._wake_due()

"""Per-attempt time budgets and the timeout scope that enforces them.

An attempt may take ``min(attempt_timeout, deadline remaining)``. The cheapest enforcement is to
hand that budget to the transport (httpx timeouts, socket timeouts), which is what the HTTP client
does; the pipeline can also enforce it itself with :func:`timeout_scope`. On the real clock that is
``asyncio.timeout`` (the loop's clock *is* the monotonic clock); on any other clock, such as
:class:`~connectors.clock.FakeClock` in tests, a watchdog task sleeps on that clock and cancels
the attempt, so virtual time drives timeouts exactly like it drives backoff.
"""

from __future__ import annotations

import asyncio
import math
from types import TracebackType
from typing import Protocol

from connectors.clock import Clock, SystemClock

__all__ = ["TimeoutScope", "attempt_budget", "timeout_scope"]


def attempt_budget(attempt_timeout: float, deadline_at: float, now: float) -> float:
    """Seconds the next attempt may take: the per-attempt timeout, cut to the deadline."""
    remaining = deadline_at - now
    return attempt_timeout if attempt_timeout < remaining else remaining


class TimeoutScope(Protocol):
    """An async context manager that cancels its block after a delay; raises ``TimeoutError``."""

    async def __aenter__(self) -> object: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None: ...

    def expired(self) -> bool:
        """Whether this scope's timer fired (so a ``TimeoutError`` is ours, not the block's)."""
        ...


def timeout_scope(clock: Clock, seconds: float) -> TimeoutScope:
    """A scope that cancels the block after ``seconds`` on ``clock`` and raises ``TimeoutError``."""
    if isinstance(clock, SystemClock):
        return asyncio.timeout(None if math.isinf(seconds) else seconds)
    return ClockTimeout(clock, seconds)


class ClockTimeout:
    """``asyncio.timeout`` semantics on an arbitrary :class:`~connectors.clock.Clock`."""

    __slots__ = ("_cancelling", "_clock", "_expired", "_seconds", "_task", "_watchdog")

    def __init__(self, clock: Clock, seconds: float) -> None:
        self._clock = clock
        self._seconds = seconds
        self._expired = False
        self._cancelling = 0
        self._task: asyncio.Task[object] | None = None
        self._watchdog: asyncio.Task[None] | None = None

    def expired(self) -> bool:
        return self._expired

    async def __aenter__(self) -> ClockTimeout:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("ClockTimeout must be used inside a task")
        self._task = task
        self._cancelling = task.cancelling()
        if not math.isinf(self._seconds):
            self._watchdog = asyncio.get_running_loop().create_task(self._watch())
        return self

    async def _watch(self) -> None:
        await self._clock.sleep(self._seconds)
        self._expired = True
        if self._task is not None:
            self._task.cancel()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        watchdog = self._watchdog
        if watchdog is not None and not watchdog.done():
            watchdog.cancel()
        task = self._task
        if (
            self._expired
            and task is not None
            and task.uncancel() <= self._cancelling
            and exc_type is asyncio.CancelledError
        ):
            raise TimeoutError from exc
        return None

"""The client-side rate limiter: GCRA reservations in the state backend, waiting here.

Each acquisition *reserves* its units at the earliest time the limit allows and returns how long
to wait; the caller then sleeps on its clock. Because reservations are handed out in arrival
order, waiters are admitted in FIFO order and none starves, across tasks, threads and (with the
Redis backend) processes, with no lock held while waiting. A wait that would exceed the caller's
bound (the deadline) reserves nothing and raises :class:`~connectors.errors.RateLimited` with the
wait as ``retry_after``. A server's 429 with ``Retry-After`` is fed back with :meth:`block`.

A cancelled waiter forfeits its reservation: the limiter errs on the side of sending less.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from connectors.clock import Clock
from connectors.errors import RateLimited
from connectors.resilience.testmode import is_testing
from connectors.state.base import RateDecision, RateRequest, StateBackend

__all__ = ["RateLimiter"]


class RateLimiter:
    """Rate limits over a :class:`~connectors.state.base.StateBackend` (keys already scoped)."""

    __slots__ = ("_clock", "_state")

    def __init__(self, state: StateBackend, clock: Clock) -> None:
        self._state = state
        self._clock = clock

    async def reserve(
        self, requests: Sequence[RateRequest], *, max_wait: float = math.inf
    ) -> RateDecision:
        """Reserve units on every key at one common time; do not wait.

        Not admitted (nothing reserved) when the wait would exceed ``max_wait``.
        """
        now = self._clock.monotonic()
        if len(requests) == 1:
            r = requests[0]
            return await self._state.rate_acquire(
                r.key, rate=r.rate, burst=r.burst, cost=r.cost, max_wait=max_wait, now=now
            )
        return await self._state.rate_acquire_many(requests, max_wait=max_wait, now=now)

    async def acquire(
        self, requests: Sequence[RateRequest], *, max_wait: float = math.inf
    ) -> float:
        """Reserve and wait until the units may be used; return the seconds waited.

        Raises :class:`~connectors.errors.RateLimited` (``retry_after`` = the wait it would have
        needed) without reserving when the wait would exceed ``max_wait``.
        """
        decision = await self.reserve(requests, max_wait=max_wait)
        if not decision.admitted:
            raise self.refusal(requests, decision.wait)
        if decision.wait > 0.0 and not is_testing():
            await self._clock.sleep(decision.wait)
        return decision.wait

    @staticmethod
    def refusal(requests: Sequence[RateRequest], wait: float) -> RateLimited:
        """The error for a wait that would pass the caller's bound."""
        return RateLimited(
            f"the client-side rate limit needs a {wait:.3f}s wait, past the deadline",
            retry_after=wait,
            quota=",".join(r.key for r in requests),
        )

    async def block(self, key: str, seconds: float) -> None:
        """Admit nothing on ``key`` for ``seconds`` (a provider's 429 with Retry-After)."""
        if seconds > 0.0:
            await self._state.rate_block(key, seconds=seconds, now=self._clock.monotonic())

    async def remaining(self, request: RateRequest) -> float:
        """Units available right now on the request's key (0..burst), for gauges."""
        return await self._state.rate_remaining(
            request.key, rate=request.rate, burst=request.burst, now=self._clock.monotonic()
        )

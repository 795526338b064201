"""Concurrent callers through the real connector stack, against one shared rate limit.

What the four-process proof of issue 11 runs in each process (the test in
``tests/state/test_distributed_rate.py`` and ``benchmarks/distributed.py`` both): ``callers``
tasks calling a :class:`~connectors.testing.ratelimited.RateLimitedAPI` through a
:class:`~connectors.http.client.ConnectorHttpClient` whose pipeline applies one
:class:`~connectors.resilience.RateLimit` kept in Redis, so every process shares it. Retries are
off: a 429 must surface, not be absorbed by a second attempt.

The processes start together: each warms its connections, signals ``ready`` (a
``multiprocessing`` barrier or event the parent waits on) and takes the common start time, on the
monotonic clock every process of the host shares, from ``starts`` (a queue).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Protocol

import httpx2

from connectors.clock import SystemClock
from connectors.context import CallContext
from connectors.errors import ConnectorError
from connectors.http.client import ConnectorHttpClient
from connectors.resilience import Pipeline, RateLimit, ResiliencePolicy, RetryPolicy
from connectors.state.redis import RedisStateBackend

__all__ = ["run_callers"]


class _Waitable(Protocol):
    def wait(self, timeout: float | None = None) -> object: ...


class _Starts(Protocol):
    def get(self, block: bool = True, timeout: float | None = None) -> float: ...


async def run_callers(
    api_url: str,
    redis_url: str,
    tenant: str,
    *,
    rate: float,
    duration: float,
    callers: int,
    ready: _Waitable,
    starts: _Starts,
    ready_timeout: float = 300.0,
) -> dict[str, dict[str, int]]:
    """Call ``GET /v1/items`` from ``callers`` tasks for ``duration`` seconds after the common
    start; return the HTTP status classes seen and the typed errors raised, counted."""
    clock = SystemClock()
    backend = RedisStateBackend(redis_url)
    policy = ResiliencePolicy(retry=RetryPolicy(max_attempts=1))
    pipeline = Pipeline("ratelimited", policy, state=backend, clock=clock)
    limits = (RateLimit("api", rate),)  # one key for every process: same tenant and connector
    ctx = CallContext(tenant=tenant)
    statuses: Counter[str] = Counter()
    errors: Counter[str] = Counter()

    def observe(
        connector: str, tenant: str, operation: str, status_class: str, duration: float
    ) -> None:
        statuses[status_class] += 1

    pool = httpx2.Limits(max_connections=callers, max_keepalive_connections=callers)
    try:
        async with ConnectorHttpClient(
            "ratelimited", pipeline=pipeline, base_url=api_url, observer=observe, limits=pool
        ) as http:
            # Open the connections before the start (slow on a loaded machine); not limited.
            await asyncio.gather(*(backend.ping() for _ in range(callers)))
            await http.get("/_stats", ctx=ctx, operation="warm-up")  # a control route
            statuses.clear()
            await asyncio.to_thread(ready.wait, ready_timeout)
            start_at = await asyncio.to_thread(starts.get, True, 60)
            stop_at = start_at + duration
            await clock.sleep(start_at - clock.monotonic())

            async def caller() -> None:
                while clock.monotonic() < stop_at:
                    try:
                        await http.get("/v1/items", ctx=ctx, operation="list", rate_limits=limits)
                    except ConnectorError as exc:
                        errors[type(exc).__name__] += 1

            await asyncio.gather(*(caller() for _ in range(callers)))
    finally:
        await backend.aclose()
    return {"statuses": dict(statuses), "errors": dict(errors)}

"""The rate limiter: holds its rate under 100 waiters, FIFO, no starvation, weights, deadlines."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from connectors.clock import FakeClock
from connectors.errors import RateLimited, ServiceUnavailable
from connectors.resilience import (
    RateLimit,
    RateLimiter,
    RateLimitWaitEvent,
    ResiliencePolicy,
    RetryPolicy,
    set_testing,
)
from connectors.state import MemoryStateBackend, RateRequest
from tests.resilience._support import Recorder, ctx, ok, pipeline, waits_on


@pytest.fixture(autouse=True)
def _real_waits() -> Iterator[None]:
    with waits_on():
        yield


def test_100_concurrent_waiters_are_admitted_at_the_configured_rate_in_fifo_order():
    async def main() -> None:
        clock = FakeClock(start=0.0)
        limiter = RateLimiter(MemoryStateBackend(), clock)
        request = [RateRequest("k", rate=10.0, burst=1.0)]
        admitted: list[tuple[int, float]] = []

        async def waiter(i: int) -> None:
            await limiter.acquire(request)
            admitted.append((i, clock.monotonic()))

        await asyncio.gather(*(waiter(i) for i in range(100)))
        assert [i for i, _ in admitted] == list(range(100))  # FIFO, and nobody starved
        times = [t for _, t in admitted]
        assert times == pytest.approx([i * 0.1 for i in range(100)])
        # Never more than burst + rate * span in any window.
        for a in range(100):
            for b in range(a, 100):
                assert b - a + 1 <= 1 + 10.0 * (times[b] - times[a]) + 1e-6

    asyncio.run(main())


def test_weighted_costs_are_paid_in_time():
    async def main() -> None:
        clock = FakeClock(start=0.0)
        limiter = RateLimiter(MemoryStateBackend(), clock)
        waits = [
            await limiter.acquire([RateRequest("k", rate=10.0, burst=5.0, cost=cost)])
            for cost in (5.0, 5.0, 1.0)
        ]
        assert waits == pytest.approx([0.0, 0.5, 0.1])
        assert clock.monotonic() == pytest.approx(0.6)

    asyncio.run(main())


def test_a_wait_past_the_bound_raises_rate_limited_without_consuming():
    async def main() -> None:
        clock = FakeClock(start=0.0)
        state = MemoryStateBackend()
        limiter = RateLimiter(state, clock)
        request = [RateRequest("k", rate=1.0, burst=1.0)]
        await limiter.acquire(request)
        with pytest.raises(RateLimited) as info:
            await limiter.acquire(request, max_wait=0.5)
        assert info.value.retry_after == pytest.approx(1.0)
        assert clock.monotonic() == 0.0  # it did not wait
        assert (await limiter.reserve(request)).wait == pytest.approx(1.0)  # nothing was taken

    asyncio.run(main())


def test_block_pushes_admission_past_the_servers_retry_after():
    async def main() -> None:
        clock = FakeClock(start=0.0)
        limiter = RateLimiter(MemoryStateBackend(), clock)
        request = [RateRequest("k", rate=100.0, burst=1.0)]
        await limiter.block("k", 30.0)
        await limiter.block("k", 0.0)  # no-op
        assert await limiter.remaining(request[0]) == 0.0
        assert await limiter.acquire(request) == pytest.approx(30.0)
        assert clock.monotonic() == pytest.approx(30.0)

    asyncio.run(main())


def test_test_mode_skips_waits_but_still_reserves():
    async def main() -> None:
        clock = FakeClock(start=0.0)
        limiter = RateLimiter(MemoryStateBackend(), clock)
        request = [RateRequest("k", rate=1.0, burst=1.0)]
        with set_testing(True):
            for _ in range(5):
                await limiter.acquire(request)
        assert clock.monotonic() == 0.0
        assert (await limiter.reserve(request)).wait == pytest.approx(5.0)

    asyncio.run(main())


# --- through the pipeline ----------------------------------------------------------------------


def test_pipeline_takes_one_token_per_attempt_for_every_limit():
    async def main() -> None:
        clock = FakeClock(start=0.0)
        policy = ResiliencePolicy(
            retry=RetryPolicy(max_attempts=3, base_delay=0.0, max_delay=0.0),
            rate_limits=(RateLimit("api", rate=1.0, burst=10.0),),
        )
        p = pipeline(policy, clock=clock)
        attempts = 0

        async def flaky(attempt: object) -> str:
            nonlocal attempts
            attempts += 1
            if attempts < 3:
                raise ServiceUnavailable("503")
            return "ok"

        extra = RateLimit("bulk", rate=1.0, burst=10.0, cost=2.0)
        assert (
            await p.execute(flaky, ctx=ctx(), operation="op", idempotent=True, rate_limits=[extra])
            == "ok"
        )
        assert await p.rate_limit_remaining("acme", RateLimit("api", rate=1.0, burst=10.0)) == 7.0
        assert await p.rate_limit_remaining("acme", RateLimit("bulk", rate=1.0, burst=10.0)) == 4.0

    asyncio.run(main())


def test_pipeline_limiter_wait_bounded_by_deadline_raises_rate_limited():
    async def main() -> None:
        clock = FakeClock(start=0.0)
        recorder = Recorder()
        policy = ResiliencePolicy(deadline=5.0, rate_limits=(RateLimit("api", rate=0.1),))
        p = pipeline(policy, clock=clock, listener=recorder)
        assert await p.execute(ok, ctx=ctx(), operation="op", idempotent=True) == "ok"
        with pytest.raises(RateLimited) as info:
            await p.execute(ok, ctx=ctx(), operation="op", idempotent=True)
        err = info.value
        assert err.retry_after == pytest.approx(10.0)
        assert (err.connector, err.tenant, err.operation) == ("svc", "acme", "op")
        assert "api" in str(err)
        assert clock.monotonic() == 0.0
        events = recorder.of(RateLimitWaitEvent)
        assert len(events) == 1
        assert not events[0].admitted
        assert events[0].keys == ("api",)
        # The refused call took nothing: the next admission is still at t=10.
        assert await p.rate_limit_remaining("acme", RateLimit("api", rate=0.1)) == 0.0

    asyncio.run(main())


def test_pipeline_reports_the_wait_and_waits_on_its_clock():
    async def main() -> None:
        clock = FakeClock(start=0.0)
        recorder = Recorder()
        policy = ResiliencePolicy(rate_limits=(RateLimit("api", rate=2.0),))
        p = pipeline(policy, clock=clock, listener=recorder)
        for _ in range(3):
            await p.execute(ok, ctx=ctx(), operation="op", idempotent=True)
        assert clock.monotonic() == pytest.approx(1.0)
        assert [e.wait for e in recorder.of(RateLimitWaitEvent)] == pytest.approx([0.5, 0.5])

    asyncio.run(main())


def test_a_429_with_retry_after_blocks_the_limit_for_other_callers():
    async def main() -> None:
        clock = FakeClock(start=0.0)
        policy = ResiliencePolicy(
            retry=RetryPolicy(max_attempts=1), rate_limits=(RateLimit("api", rate=100.0),)
        )
        p = pipeline(policy, clock=clock)

        async def throttled(attempt: object) -> str:
            raise RateLimited(retry_after=20.0)

        with pytest.raises(RateLimited):
            await p.execute(throttled, ctx=ctx(), operation="op", idempotent=True)
        await p.execute(ok, ctx=ctx(), operation="op", idempotent=True)
        assert clock.monotonic() == pytest.approx(20.0)
        # Another tenant's limit was not touched.
        assert await p.rate_limit_remaining("other", RateLimit("api", rate=100.0)) == 1.0

    asyncio.run(main())

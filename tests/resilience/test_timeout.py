"""Attempt budgets and the clock-driven timeout scope."""

from __future__ import annotations

import asyncio
import math

import pytest

from connectors.clock import FakeClock, system_clock
from connectors.resilience.timeout import ClockTimeout, attempt_budget, timeout_scope


def test_budget_is_the_smaller_of_attempt_timeout_and_deadline_remaining():
    assert attempt_budget(30.0, 100.0, 90.0) == 10.0
    assert attempt_budget(5.0, 100.0, 90.0) == 5.0
    assert attempt_budget(5.0, math.inf, 90.0) == 5.0


def test_real_clock_uses_asyncio_timeout_and_other_clocks_a_watchdog():
    async def main() -> None:
        assert isinstance(timeout_scope(system_clock, 1.0), asyncio.Timeout)
        assert isinstance(timeout_scope(FakeClock(), 1.0), ClockTimeout)

    asyncio.run(main())


def test_real_clock_timeout_fires():
    async def main() -> None:
        scope = timeout_scope(system_clock, 0.01)
        with pytest.raises(TimeoutError):
            async with scope:
                await asyncio.sleep(5)
        assert scope.expired()

    asyncio.run(main())


def test_clock_timeout_cancels_the_block_at_virtual_time():
    async def main() -> None:
        clock = FakeClock(start=0.0)
        scope = timeout_scope(clock, 2.0)
        with pytest.raises(TimeoutError):
            async with scope:
                await clock.sleep(10.0)
        assert scope.expired()
        assert clock.monotonic() == pytest.approx(2.0)

    asyncio.run(main())


def test_clock_timeout_lets_a_fast_block_finish_and_stops_its_watchdog():
    async def main() -> None:
        clock = FakeClock(start=0.0)
        scope = timeout_scope(clock, 5.0)
        async with scope:
            await clock.sleep(1.0)
        assert not scope.expired()
        await clock.sleep(10.0)  # the watchdog would have fired by now
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]

    asyncio.run(main())


def test_clock_timeout_does_not_swallow_an_outer_cancellation():
    async def main() -> None:
        clock = FakeClock(start=0.0)

        async def body() -> None:
            async with timeout_scope(clock, 5.0):
                await clock.sleep(10.0)

        task = asyncio.create_task(body())
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_infinite_clock_timeout_never_fires():
    async def main() -> None:
        clock = FakeClock(start=0.0)
        async with timeout_scope(clock, math.inf) as scope:
            await clock.sleep(1e6)
        assert not scope.expired()

    asyncio.run(main())


def test_clock_timeout_outside_a_task_is_an_error():
    scope = ClockTimeout(FakeClock(), 1.0)
    with pytest.raises(RuntimeError):
        scope.__aenter__().send(None)

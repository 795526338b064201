"""The bulkhead: concurrency cap, bounded FIFO queue, rejections, waits bounded in time."""

from __future__ import annotations

import asyncio

import pytest

from connectors.clock import FakeClock
from connectors.errors import BulkheadFull, DeadlineExceeded
from connectors.resilience import (
    Bulkhead,
    BulkheadPolicy,
    BulkheadRejectedEvent,
    ResiliencePolicy,
    RetryPolicy,
)
from tests.resilience._support import Recorder, ctx, pipeline


def test_rejects_past_the_queue_with_bulkhead_full():
    async def main() -> None:
        clock = FakeClock()
        recorder = Recorder()
        policy = ResiliencePolicy(
            retry=RetryPolicy(max_attempts=1),
            bulkhead=BulkheadPolicy(max_concurrent=2, max_queue=3),
        )
        p = pipeline(policy, clock=clock, listener=recorder)
        running = 0
        peak = 0

        async def work(attempt: object) -> str:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await clock.sleep(1.0)
            running -= 1
            return "ok"

        results = await asyncio.gather(
            *(p.execute(work, ctx=ctx(), operation="op", idempotent=True) for _ in range(8)),
            return_exceptions=True,
        )
        assert results.count("ok") == 5
        rejected = [r for r in results if isinstance(r, BulkheadFull)]
        assert len(rejected) == 3
        assert rejected[0].tenant == "acme"
        assert rejected[0].connector == "svc"
        assert peak == 2
        events = recorder.of(BulkheadRejectedEvent)
        assert len(events) == 3
        assert events[0].reason == "queue_full"
        assert (events[0].in_flight, events[0].queued) == (2, 3)

    asyncio.run(main())


def test_queued_callers_get_slots_in_arrival_order():
    async def main() -> None:
        bulkhead = Bulkhead(BulkheadPolicy(max_concurrent=1, max_queue=10), FakeClock())
        first = await bulkhead.acquire("t")
        order: list[int] = []

        async def waiter(i: int) -> None:
            slot = await bulkhead.acquire("t")
            order.append(i)
            bulkhead.release(slot)

        tasks = [asyncio.create_task(waiter(i)) for i in range(5)]
        await asyncio.sleep(0)
        assert bulkhead.try_acquire("t") is None  # a newcomer may not overtake the queue
        bulkhead.release(first)
        await asyncio.gather(*tasks)
        assert order == [0, 1, 2, 3, 4]
        assert bulkhead.stats("t") == (0, 0)

    asyncio.run(main())


def test_a_cancelled_waiter_leaves_the_queue_and_does_not_leak_a_slot():
    async def main() -> None:
        bulkhead = Bulkhead(BulkheadPolicy(max_concurrent=1, max_queue=1), FakeClock())
        held = await bulkhead.acquire("t")
        task = asyncio.create_task(bulkhead.acquire("t"))
        await asyncio.sleep(0)
        assert bulkhead.stats("t") == (1, 1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert bulkhead.stats("t") == (1, 0)
        bulkhead.release(held)
        assert bulkhead.stats("t") == (0, 0)

    asyncio.run(main())


def test_a_waiter_cancelled_after_being_handed_a_slot_passes_it_on():
    async def main() -> None:
        bulkhead = Bulkhead(BulkheadPolicy(max_concurrent=1, max_queue=5), FakeClock())
        held = await bulkhead.acquire("t")
        doomed = asyncio.create_task(bulkhead.acquire("t"))
        heir = asyncio.create_task(bulkhead.acquire("t"))
        await asyncio.sleep(0)
        bulkhead.release(held)  # hands the slot to `doomed`...
        doomed.cancel()  # ...which leaves before running
        with pytest.raises(asyncio.CancelledError):
            await doomed
        slot = await heir
        assert bulkhead.stats("t") == (1, 0)
        bulkhead.release(slot)
        assert bulkhead.stats("t") == (0, 0)

    asyncio.run(main())


def test_max_wait_rejects_with_bulkhead_full_and_deadline_with_deadline_exceeded():
    async def main() -> None:
        clock = FakeClock(start=0.0)
        recorder = Recorder()
        base = {"retry": RetryPolicy(max_attempts=1)}
        p = pipeline(
            ResiliencePolicy(
                bulkhead=BulkheadPolicy(max_concurrent=1, max_queue=5, max_wait=2.0), **base
            ),
            clock=clock,
            listener=recorder,
        )

        async def hold(attempt: object) -> str:
            await clock.sleep(10.0)
            return "ok"

        holder = asyncio.create_task(p.execute(hold, ctx=ctx(), operation="op", idempotent=True))
        await asyncio.sleep(0)
        with pytest.raises(BulkheadFull) as info:
            await p.execute(hold, ctx=ctx(), operation="op", idempotent=True)
        assert clock.monotonic() == pytest.approx(2.0)
        assert "2.0s" in str(info.value)
        assert recorder.of(BulkheadRejectedEvent)[-1].reason == "max_wait"
        from connectors.context import Deadline

        short = ctx(deadline=Deadline.after(1.0, clock))
        with pytest.raises(DeadlineExceeded):
            await p.execute(hold, ctx=short, operation="op", idempotent=True)
        assert clock.monotonic() == pytest.approx(3.0)
        assert await holder == "ok"

    asyncio.run(main())


def test_tenants_have_separate_compartments():
    async def main() -> None:
        bulkhead = Bulkhead(BulkheadPolicy(max_concurrent=1, max_queue=0), FakeClock())
        await bulkhead.acquire("a")
        with pytest.raises(BulkheadFull):
            await bulkhead.acquire("a")
        assert await bulkhead.acquire("b") is not None

    asyncio.run(main())


def test_idle_compartments_are_purged():
    bulkhead = Bulkhead(BulkheadPolicy(), FakeClock())
    for i in range(5000):
        slot = bulkhead.try_acquire(f"tenant-{i}")
        assert slot is not None
        bulkhead.release(slot)
    assert len(bulkhead._compartments) < 2100

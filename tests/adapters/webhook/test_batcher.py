"""Group commit: concurrent submits share one batch; callers resume only after it ran."""

import asyncio

import pytest

from connectors.adapters.webhook.batcher import Coalescer


def run(coro):
    return asyncio.run(coro)


def test_submits_of_the_same_tick_run_as_one_batch_and_each_caller_gets_its_result():
    batches = []

    async def double(items):
        batches.append(list(items))
        return [i * 2 for i in items]

    async def main():
        c = Coalescer(double)
        results = await asyncio.gather(*(c.submit(i) for i in range(5)))
        assert results == [0, 2, 4, 6, 8]
        assert c.batches == 1

    run(main())
    assert batches == [[0, 1, 2, 3, 4]]


def test_items_arriving_while_a_batch_runs_form_the_next_batch():
    batches = []
    gate = started = None

    async def slow(items):
        batches.append(list(items))
        if len(batches) == 1:
            started.set()
            await gate.wait()
        return items

    async def main():
        nonlocal gate, started
        gate, started = asyncio.Event(), asyncio.Event()
        c = Coalescer(slow)
        first = asyncio.ensure_future(c.submit("a"))
        await started.wait()
        later = [asyncio.ensure_future(c.submit(x)) for x in "bcd"]
        await asyncio.sleep(0)
        assert batches == [["a"]]  # one batch in flight at a time
        gate.set()
        assert await first == "a"
        assert [await f for f in later] == ["b", "c", "d"]

    run(main())
    assert batches == [["a"], ["b", "c", "d"]]


def test_a_caller_resumes_only_after_the_batch_function_returned():
    committed = []

    async def commit(items):
        await asyncio.sleep(0)
        committed.extend(items)
        return [None] * len(items)

    async def main():
        c = Coalescer(commit)

        async def deliver(i):
            await c.submit(i)
            assert i in committed  # "done" is never reported before the write

        await asyncio.gather(*(deliver(i) for i in range(10)))

    run(main())
    assert sorted(committed) == list(range(10))


def test_a_failed_batch_raises_in_each_of_its_callers_and_the_next_batch_starts_afresh():
    calls = 0

    async def flaky(items):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("disk full")
        return items

    async def main():
        c = Coalescer(flaky)
        results = await asyncio.gather(c.submit(1), c.submit(2), return_exceptions=True)
        assert all(isinstance(r, OSError) for r in results)
        assert await c.submit(3) == 3

    run(main())


def test_batches_are_capped_at_max_batch():
    sizes = []

    async def echo(items):
        sizes.append(len(items))
        return items

    async def main():
        c = Coalescer(echo, max_batch=3)
        assert await asyncio.gather(*(c.submit(i) for i in range(7))) == list(range(7))

    run(main())
    assert sizes == [3, 3, 1]


def test_a_cancelled_caller_is_left_out_and_the_others_still_get_their_results():
    seen = []

    async def echo(items):
        seen.extend(items)
        return items

    async def main():
        c = Coalescer(echo)
        gone = asyncio.ensure_future(c.submit("gone"))
        kept = asyncio.ensure_future(c.submit("kept"))
        gone.cancel()
        assert await kept == "kept"
        with pytest.raises(asyncio.CancelledError):
            await gone

    run(main())
    assert seen == ["kept"]


def test_a_wrong_number_of_results_is_an_error_not_a_silent_mismatch():
    async def short(items):
        return items[:-1]

    async def main():
        c = Coalescer(short)
        with pytest.raises(RuntimeError, match="returned"):
            await asyncio.gather(c.submit(1), c.submit(2))

    run(main())


def test_a_coalescer_can_be_reused_on_a_new_event_loop_and_aclose_waits_for_the_flush():
    async def echo(items):
        await asyncio.sleep(0)
        return items

    c = Coalescer(echo)

    async def main():
        pending = asyncio.ensure_future(c.submit("x"))
        await asyncio.sleep(0)
        await c.aclose()
        assert pending.done()
        assert await pending == "x"

    run(main())
    run(main())  # a second asyncio.run: a new loop


def test_max_batch_must_be_positive():
    async def echo(items):
        return items

    with pytest.raises(ValueError, match="max_batch"):
        Coalescer(echo, max_batch=0)

"""The local runner: runs, retries, gives up, recovers abandoned jobs, shuts down gracefully."""

import asyncio

import pytest

from connectors.clock import FakeClock
from connectors.errors import ConfigurationError
from connectors.jobs import JobFailed, JobQueue, JobRegistry, LocalJobRunner, RetryJob
from tests.jobs._support import make_db


def run(coro):
    return asyncio.run(coro)


def test_run_pending_runs_due_jobs_with_their_context(tmp_path):
    seen = []
    registry = JobRegistry()

    @registry.job("greet")
    async def greet(ctx, args):
        seen.append((args["name"], ctx.attempt, ctx.tenant, ctx.service("prefix", str)))

    async def main():
        db = await make_db(tmp_path)
        queue = JobQueue(db)
        await queue.enqueue("greet", {"name": "a"}, tenant="t1")
        await queue.enqueue("greet", {"name": "b"})
        runner = LocalJobRunner(db, registry, services={"prefix": "hi"})
        assert await runner.run_pending() == 2
        assert await queue.counts() == {"done": 2}
        await db.dispose()

    run(main())
    assert sorted(seen) == [("a", 1, "t1", "hi"), ("b", 1, None, "hi")]


def test_failures_follow_the_retry_delays_then_the_job_is_dead(tmp_path):
    clock = FakeClock()
    times = []
    registry = JobRegistry()

    @registry.job("flaky", retry_delays=(5, 30))
    async def flaky(ctx, args):
        times.append(clock.time())
        raise ValueError("nope")

    async def main():
        db = await make_db(tmp_path)
        queue = JobQueue(db, clock=clock)
        job = await queue.enqueue("flaky", {})
        runner = LocalJobRunner(db, registry, clock=clock)
        start = clock.time()
        while (due := await queue.next_due()) is not None:
            clock.advance(max(0.0, due - clock.time()))
            await runner.run_pending()
        info = await queue.get(job)
        assert info.status == "dead"
        assert info.last_error == "ValueError: nope"
        assert [t - start for t in times] == [0, 5, 35]
        await db.dispose()

    run(main())


def test_retry_job_sets_its_own_delay_and_job_failed_stops(tmp_path):
    clock = FakeClock()
    registry = JobRegistry()

    @registry.job("later")
    async def later(ctx, args):
        if ctx.attempt == 1:
            raise RetryJob(123, "not yet")

    @registry.job("never")
    async def never(ctx, args):
        raise JobFailed("bad arguments")

    async def main():
        db = await make_db(tmp_path)
        queue = JobQueue(db, clock=clock)
        a = await queue.enqueue("later", {})
        b = await queue.enqueue("never", {})
        c = await queue.enqueue("unknown", {})
        runner = LocalJobRunner(db, registry, clock=clock)
        await runner.run_pending()
        assert (await queue.get(a)).run_at == clock.time() + 123
        assert (await queue.get(a)).last_error == "not yet"
        assert (await queue.get(b)).status == "failed"
        assert "no job function" in (await queue.get(c)).last_error
        clock.advance(123)
        await runner.run_pending()
        assert (await queue.get(a)).status == "done"
        await db.dispose()

    run(main())


def test_the_background_loop_respects_concurrency_and_drains_on_shutdown(tmp_path):
    registry = JobRegistry()
    active = 0
    peak = 0
    done = []

    @registry.job("work")
    async def work(ctx, args):
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.01)
        active -= 1
        done.append(args["i"])

    async def main():
        db = await make_db(tmp_path)
        queue = JobQueue(db)
        for i in range(20):
            await queue.enqueue("work", {"i": i})
        runner = LocalJobRunner(db, registry, concurrency=3, poll=0.01)
        async with runner:
            for _ in range(500):
                if len(done) == 20:
                    break
                await asyncio.sleep(0.01)
        assert await queue.counts() == {"done": 20}
        await db.dispose()

    run(main())
    assert sorted(done) == list(range(20))
    assert peak <= 3


def test_shutdown_cancels_jobs_past_the_grace_period_and_releases_them(tmp_path):
    registry = JobRegistry()

    @registry.job("slow")
    async def slow(ctx, args):
        await asyncio.sleep(30)

    async def main():
        db = await make_db(tmp_path)
        queue = JobQueue(db)
        job = await queue.enqueue("slow", {})
        runner = LocalJobRunner(db, registry, poll=0.01, grace=0.05)
        runner.start()
        for _ in range(200):
            if (await queue.get(job)).status == "running":
                break
            await asyncio.sleep(0.01)
        await runner.shutdown()
        info = await queue.get(job)
        assert info.status == "queued"
        assert info.lease_owner is None
        assert info.last_error == "released at shutdown"
        await db.dispose()

    run(main())


def test_a_job_abandoned_by_a_dead_worker_runs_again_after_its_lease(tmp_path):
    clock = FakeClock()
    runs = []
    registry = JobRegistry()

    @registry.job("once")
    async def once(ctx, args):
        runs.append(ctx.worker)

    async def main():
        db = await make_db(tmp_path)
        queue = JobQueue(db, clock=clock)
        job = await queue.enqueue("once", {})
        await queue.lease("dead-worker", limit=1, lease=30)  # leased, then the worker died
        runner = LocalJobRunner(db, registry, clock=clock, worker_id="alive", lease=30)
        assert await runner.run_pending() == 0
        clock.advance(31)
        assert await runner.run_pending() == 1
        assert (await queue.get(job)).status == "done"
        assert (await queue.get(job)).attempts == 2
        await db.dispose()

    run(main())
    assert runs == ["alive"]


class ManualClock:
    """A clock that moves only when the test says so (sleepers wake on ``advance``)."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now
        self.sleepers: list[tuple[float, asyncio.Future]] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        fut = asyncio.get_running_loop().create_future()
        self.sleepers.append((self.now + seconds, fut))
        await fut

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = [(t, f) for t, f in self.sleepers if t <= self.now]
        self.sleepers = [(t, f) for t, f in self.sleepers if t > self.now]
        for _, fut in due:
            if not fut.done():
                fut.set_result(None)


async def eventually(check, tries: int = 500) -> None:
    for _ in range(tries):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


def test_the_heartbeat_extends_leases_of_long_jobs(tmp_path):
    clock = ManualClock()
    registry = JobRegistry()
    release = None

    @registry.job("long")
    async def long(ctx, args):
        await release.wait()

    async def main():
        nonlocal release
        release = asyncio.Event()
        db = await make_db(tmp_path)
        queue = JobQueue(db, clock=clock)
        job = await queue.enqueue("long", {})
        runner = LocalJobRunner(db, registry, clock=clock, lease=30, poll=1)
        runner.start()

        async def running():
            return (await queue.get(job)).status == "running"

        await eventually(running)
        for _ in range(10):  # 100 virtual seconds: more than three leases
            clock.advance(10)

            async def extended():
                row = await queue.get(job)
                async with db.session() as session:
                    from connectors.jobs.tables import JobRow

                    expires = (await session.get(JobRow, row.id)).lease_expires_at
                return expires >= clock.now + 20

            await eventually(extended)
        assert await queue.lease("intruder", limit=1, lease=10) == []
        release.set()
        await runner.shutdown(grace=0)
        await db.dispose()

    run(main())


def test_invalid_runner_settings_are_refused(tmp_path):
    with pytest.raises(ConfigurationError):
        LocalJobRunner(None, JobRegistry(), concurrency=0)
    with pytest.raises(ConfigurationError):
        LocalJobRunner(None, JobRegistry(), lease=0)


def test_jobs_are_leased_in_batches_with_prefetch_and_concurrency_still_holds(tmp_path):
    registry = JobRegistry()
    active = peak = 0
    done = []

    @registry.job("work")
    async def work(ctx, args):
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.001)
        active -= 1
        done.append(args["i"])

    async def main():
        db = await make_db(tmp_path)
        queue = JobQueue(db)
        async with db.session() as session:
            for i in range(60):
                await queue.enqueue("work", {"i": i}, session=session)
        runner = LocalJobRunner(db, registry, concurrency=4, prefetch=8, poll=0.01)
        leases = []
        lease = runner.queue.lease

        async def counting(owner, *, limit, **kw):
            jobs = await lease(owner, limit=limit, **kw)
            leases.append((limit, len(jobs)))
            return jobs

        runner.queue.lease = counting
        async with runner:
            for _ in range(1000):
                if len(done) == 60:
                    break
                await asyncio.sleep(0.005)
        assert await queue.counts() == {"done": 60}
        await db.dispose()
        return leases

    leases = run(main())
    assert sorted(done) == list(range(60))
    assert peak <= 4
    took = [n for _, n in leases if n]
    assert min(limit for limit, _ in leases) >= 4  # never a lease for a single free slot
    assert len(took) <= 60 // 4  # one lease statement feeds several job starts


def test_shutdown_gives_unstarted_prefetched_jobs_back_without_spending_an_attempt(tmp_path):
    registry = JobRegistry()
    started = []

    @registry.job("block")
    async def block(ctx, args):
        started.append(args["i"])
        await asyncio.sleep(30)

    async def main():
        db = await make_db(tmp_path)
        queue = JobQueue(db)
        ids = [await queue.enqueue("block", {"i": i}) for i in range(4)]
        runner = LocalJobRunner(db, registry, concurrency=1, prefetch=3, poll=0.01, grace=0)
        runner.start()
        for _ in range(500):
            if started:
                break
            await asyncio.sleep(0.01)
        assert {(await queue.get(i)).status for i in ids} == {"running"}  # 1 running, 3 ready
        await runner.shutdown()
        infos = [await queue.get(i) for i in ids]
        assert all(info.status == "queued" and info.lease_owner is None for info in infos)
        ran = [info for info in infos if info.last_error == "released at shutdown"]
        assert [info.attempts for info in ran] == [1]
        assert sorted(info.attempts for info in infos if info not in ran) == [0, 0, 0]
        await db.dispose()

    run(main())
    assert len(started) == 1


def test_the_heartbeat_also_keeps_the_leases_of_ready_jobs(tmp_path):
    clock = ManualClock()
    registry = JobRegistry()
    release = None

    @registry.job("long")
    async def long(ctx, args):
        await release.wait()

    async def main():
        nonlocal release
        release = asyncio.Event()
        db = await make_db(tmp_path)
        queue = JobQueue(db, clock=clock)
        first = await queue.enqueue("long", {})
        waiting = await queue.enqueue("long", {})
        runner = LocalJobRunner(db, registry, clock=clock, concurrency=1, prefetch=1, lease=30)
        runner.start()

        async def both_leased():
            return {(await queue.get(first)).status, (await queue.get(waiting)).status} == {
                "running"
            }

        await eventually(both_leased)
        for _ in range(10):  # 100 virtual seconds: more than three leases
            clock.advance(10)

            async def extended():
                async with db.session() as session:
                    from connectors.jobs.tables import JobRow

                    row = await session.get(JobRow, waiting)
                    return row.lease_expires_at >= clock.now + 20

            await eventually(extended)
        assert await queue.lease("intruder", limit=2, lease=10) == []
        release.set()
        await runner.shutdown(grace=0)
        await db.dispose()

    run(main())


def test_a_negative_prefetch_is_refused():
    with pytest.raises(ConfigurationError, match="prefetch"):
        LocalJobRunner(None, JobRegistry(), prefetch=-1)

"""Enqueue (transactional, deduplicated) and atomic leasing on SQLite."""

import asyncio

import pytest

from connectors.clock import FakeClock
from connectors.errors import InvalidRequest
from connectors.jobs.queue import JobQueue
from connectors.jobs.tables import JobRow
from tests.jobs._support import make_db


def run(coro):
    return asyncio.run(coro)


def test_enqueue_in_the_callers_transaction_rolls_back_with_it(tmp_path):
    async def main():
        db = await make_db(tmp_path)
        queue = JobQueue(db)
        with pytest.raises(RuntimeError):  # noqa: PT012 - the transaction is the point
            async with db.session() as session:
                await queue.enqueue("j", {"a": 1}, session=session)
                raise RuntimeError("the caller's work failed")
        assert await queue.list() == []
        async with db.session() as session:
            job_id = await queue.enqueue("j", {"a": 1}, session=session)
        [job] = await queue.list()
        assert (job.id, job.args, job.status) == (job_id, {"a": 1}, "queued")
        await db.dispose()

    run(main())


def test_a_dedupe_key_returns_the_existing_job(tmp_path):
    async def main():
        db = await make_db(tmp_path)
        queue = JobQueue(db)
        first = await queue.enqueue("j", {}, dedupe_key="k")
        second = await queue.enqueue("j", {"other": True}, dedupe_key="k")
        assert first == second
        assert len(await queue.list()) == 1
        await db.dispose()

    run(main())


def test_arguments_must_be_json(tmp_path):
    async def main():
        db = await make_db(tmp_path)
        with pytest.raises(InvalidRequest, match="JSON"):
            await JobQueue(db).enqueue("j", {"x": object()})
        await db.dispose()

    run(main())


def test_concurrent_leases_never_hand_out_a_job_twice(tmp_path):
    async def main():
        db = await make_db(tmp_path)
        queue = JobQueue(db)
        for i in range(60):
            await queue.enqueue("j", {"i": i})
        batches = await asyncio.gather(
            *(queue.lease(f"w{n}", limit=7, lease=30) for n in range(12))
        )
        ids = [job.id for batch in batches for job in batch]
        assert len(ids) == len(set(ids)) == 60
        await db.dispose()

    run(main())


def test_only_due_jobs_are_leased_and_expired_leases_are_taken_over(tmp_path):
    clock = FakeClock()

    async def main():
        db = await make_db(tmp_path)
        queue = JobQueue(db, clock=clock)
        later = await queue.enqueue("j", {}, run_at=clock.time() + 60)
        now = await queue.enqueue("j", {})
        [job] = await queue.lease("a", limit=5, lease=30)
        assert job.id == now
        assert job.attempts == 1
        assert await queue.lease("b", limit=5, lease=30) == []
        assert await queue.next_due() == pytest.approx(clock.time() + 30)
        clock.advance(31)  # worker "a" died; its lease expired
        [again] = await queue.lease("b", limit=1, lease=30)
        assert again.id == now
        assert again.attempts == 2
        # the dead worker's late verdict is ignored: "b" owns the job now
        await queue.complete("a", [now])
        assert (await queue.get(now)).status == "running"
        await queue.complete("b", [now])
        assert (await queue.get(now)).status == "done"
        clock.advance(30)
        [due] = await queue.lease("b", limit=5, lease=30)
        assert due.id == later
        await db.dispose()

    run(main())


def test_extend_reschedule_fail_release_and_counts(tmp_path):
    clock = FakeClock()

    async def main():
        db = await make_db(tmp_path)
        queue = JobQueue(db, clock=clock)
        ids = [await queue.enqueue("j", {}) for _ in range(4)]
        await queue.lease("w", limit=4, lease=10)
        assert await queue.extend("w", ids, lease=100) == 4
        assert await queue.extend("other", ids, lease=100) == 0
        await queue.reschedule("w", ids[0], delay=50, error="boom")
        await queue.fail("w", ids[1], dead=True, error="exhausted")
        await queue.fail("w", ids[2], dead=False, error="never")
        await queue.release("w", [ids[3]])
        info = await queue.get(ids[0])
        assert info.status == "queued"
        assert info.run_at == clock.time() + 50
        assert info.last_error == "boom"
        assert await queue.counts() == {"queued": 2, "dead": 1, "failed": 1}
        async with db.session() as session:
            row = await session.get(JobRow, ids[3])
            assert row.lease_owner is None
        await db.dispose()

    run(main())


def test_unlease_gives_prefetched_jobs_back_without_spending_an_attempt(tmp_path):
    clock = FakeClock()

    async def main():
        db = await make_db(tmp_path)
        queue = JobQueue(db, clock=clock)
        ids = [await queue.enqueue("j", {}) for _ in range(3)]
        await queue.lease("w", limit=3, lease=30)
        await queue.unlease("other", ids)  # not the owner: nothing changes
        assert {(await queue.get(i)).status for i in ids} == {"running"}
        await queue.unlease("w", ids[:2])
        for job_id in ids[:2]:
            info = await queue.get(job_id)
            assert (info.status, info.attempts, info.lease_owner) == ("queued", 0, None)
            assert info.last_error is None
        again = await queue.lease("v", limit=5, lease=30)
        assert [(j.id, j.attempts) for j in again] == [(ids[0], 1), (ids[1], 1)]
        await db.dispose()

    run(main())


def test_a_lease_takes_the_earliest_jobs_whether_queued_or_abandoned(tmp_path):
    clock = FakeClock()

    async def main():
        db = await make_db(tmp_path)
        queue = JobQueue(db, clock=clock)
        start = clock.time()
        oldest = await queue.enqueue("j", {}, run_at=start - 100)
        await queue.lease("dead", limit=1, lease=10)  # its worker dies holding it
        newer = [await queue.enqueue("j", {}, run_at=start - 50 + i) for i in range(5)]
        clock.advance(11)
        picked = await queue.lease("w", limit=3, lease=30)
        assert sorted(j.id for j in picked) == [oldest, newer[0], newer[1]]
        assert {j.id: j.attempts for j in picked}[oldest] == 2
        rest = await queue.lease("w", limit=10, lease=30)
        assert sorted(j.id for j in rest) == newer[2:]
        await db.dispose()

    run(main())

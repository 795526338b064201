"""The audit writer: batching, never losing an event through outages, overflow and restarts."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from connectors.audit.events import AuditEvent
from connectors.audit.query import verify
from connectors.audit.sinks import SqlAuditSink
from connectors.audit.spool import Spool
from connectors.audit.writer import AuditWriter
from connectors.clock import FakeClock
from connectors.errors import LifecycleError
from connectors.storage.audit import AuditEventRow

from ._support import DeadSink, FlakySink, MemorySink, database, make_event


def stored_ns(rows, tenant):
    return [r.details for r in rows if r.tenant == tenant]


async def all_rows(db):
    async with db.session() as s:
        stmt = select(AuditEventRow).order_by(AuditEventRow.tenant, AuditEventRow.seq)
        return list((await s.execute(stmt)).scalars())


def test_record_queues_and_flush_delivers_everything_in_order(tmp_path):
    async def main():
        sink, clock = MemorySink(), FakeClock()
        writer = AuditWriter(sink, spool_path=tmp_path / "spool", clock=clock, batch_size=4)
        events = [make_event(clock, n=i) for i in range(10)]
        async with writer:
            for e in events:
                writer.record(e)
            assert sink.events == []  # record() never writes itself
            assert await writer.flush()
            assert sink.events == events
            assert max(len(b) for b in sink.batches) <= 4
        stats = writer.stats()
        assert (stats.recorded, stats.delivered, stats.spooled) == (10, 10, 0)

    asyncio.run(main())


def test_a_partial_batch_is_written_after_the_flush_interval(tmp_path):
    async def main():
        sink, clock = MemorySink(), FakeClock()
        async with AuditWriter(sink, spool_path=tmp_path / "s", clock=clock) as writer:
            writer.record(make_event(clock))
            for _ in range(200):
                if sink.events:
                    break
                await asyncio.sleep(0)
            assert len(sink.events) == 1
            assert 0.2 in clock.sleeps  # it lingered for flush_interval, on the injected clock

    asyncio.run(main())


def test_a_sink_outage_mid_run_loses_no_event_and_keeps_tenant_order(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            clock = FakeClock()
            sink = FlakySink(SqlAuditSink(db), failures=3, after=2)
            errors: list[Exception] = []
            writer = AuditWriter(
                sink,
                spool_path=tmp_path / "spool.jsonl",
                clock=clock,
                batch_size=10,
                on_sink_error=errors.append,
            )
            async with writer:
                for i in range(120):
                    writer.record(make_event(clock, tenant=("a", "b", "c")[i % 3], n=i))
                    if i % 15 == 0:
                        await asyncio.sleep(0)  # let the writer run mid-stream
                assert await writer.flush()
            assert sink.failed == 3
            assert len(errors) == 3
            assert writer.stats().spooled > 0
            rows = await all_rows(db)
            assert len(rows) == 120
            for k, tenant in enumerate(("a", "b", "c")):
                expected = [f'{{"n":{i}}}' for i in range(k, 120, 3)]
                assert stored_ns(rows, tenant) == expected
                assert (await verify(db, tenant)).ok
            assert not Spool(tmp_path / "spool.jsonl").has_pending

    asyncio.run(main())


def test_a_full_queue_spools_instead_of_dropping_or_blocking(tmp_path):
    async def main():
        sink, clock = MemorySink(), FakeClock()
        writer = AuditWriter(
            sink, spool_path=tmp_path / "spool", clock=clock, queue_size=5, batch_size=2
        )
        events = [make_event(clock, n=i) for i in range(23)]
        for e in events:  # no loop turn: the writer cannot drain meanwhile
            writer.record(e)
        assert writer.stats().spooled == 18
        assert await writer.flush()
        assert sink.events == events
        await writer.close()

    asyncio.run(main())


def test_a_spool_left_by_a_crash_is_replayed_first_on_restart(tmp_path):
    async def main():
        spool_path = tmp_path / "spool.jsonl"
        clock = FakeClock()
        dead = DeadSink()
        first = AuditWriter(dead, spool_path=spool_path, clock=clock, batch_size=5)
        before = [make_event(clock, tenant="a", n=i) for i in range(12)]
        async with first:
            for e in before:
                first.record(e)
            await asyncio.sleep(0)
        assert dead.calls >= 1
        assert first.stats().pending_spool == 12  # closed within its timeout: all spooled

        async with database(tmp_path) as db:
            second = AuditWriter(SqlAuditSink(db), spool_path=spool_path, clock=clock)
            async with second:
                after = [make_event(clock, tenant="a", n=100 + i) for i in range(3)]
                for e in after:
                    second.record(e)
                assert await second.flush()
            rows = await all_rows(db)
            assert [r.event_id for r in rows] == [e.id for e in before + after]
            assert (await verify(db, "a")).ok
        assert not Spool(spool_path).has_pending

    asyncio.run(main())


def test_a_batch_replayed_after_a_crash_is_stored_once(tmp_path):
    async def main():
        spool_path = tmp_path / "spool.jsonl"
        clock = FakeClock()
        events = [make_event(clock, n=i) for i in range(4)]
        async with database(tmp_path) as db:
            await SqlAuditSink(db).write_batch(events[:2])  # delivered, offset never committed
            spool = Spool(spool_path)
            spool.append(events)
            await spool.sync()
            spool.close()
            async with AuditWriter(SqlAuditSink(db), spool_path=spool_path, clock=clock) as w:
                assert await w.flush()
            rows = await all_rows(db)
            assert [r.event_id for r in rows] == [e.id for e in events]

    asyncio.run(main())


def test_flush_with_a_timeout_makes_events_durable_when_the_sink_is_down(tmp_path):
    async def main():
        clock = FakeClock()
        spool_path = tmp_path / "spool.jsonl"
        writer = AuditWriter(DeadSink(), spool_path=spool_path, clock=clock)
        async with writer:
            for i in range(7):
                writer.record(make_event(clock, n=i))
            assert not await writer.flush(timeout=1.0)
            assert Spool(spool_path).pending == 7  # on disk, readable by another process
            assert not await writer.close(timeout=0)
        assert writer.stats().sink_failures >= 1

    asyncio.run(main())


def test_redaction_runs_before_events_are_stored_or_spooled(tmp_path):
    async def main():
        clock = FakeClock()

        def redact(text: str) -> str:
            return text.replace("s3cr3t", "[redacted]")

        sink = MemorySink()
        async with AuditWriter(
            sink, spool_path=tmp_path / "a", clock=clock, redact=redact
        ) as writer:
            writer.record(make_event(clock, details={"body": "password=s3cr3t"}))
            assert await writer.flush()
        assert sink.events[0].details["body"] == "password=[redacted]"

        spool_path = tmp_path / "b"
        async with AuditWriter(
            DeadSink(), spool_path=spool_path, clock=clock, redact=redact
        ) as writer:
            writer.record(make_event(clock, details={"body": "password=s3cr3t"}))
            await writer.flush(timeout=0)
        assert "s3cr3t" not in spool_path.read_text()
        assert "[redacted]" in spool_path.read_text()

    asyncio.run(main())


def test_recording_after_close_is_an_error(tmp_path):
    async def main():
        writer = AuditWriter(MemorySink(), spool_path=tmp_path / "s", clock=FakeClock())
        assert await writer.close()
        with pytest.raises(LifecycleError, match="closed"):
            writer.record(make_event())

    asyncio.run(main())


def test_invalid_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="at least 1"):
        AuditWriter(MemorySink(), spool_path=tmp_path / "s", queue_size=0)
    with pytest.raises(ValueError, match="retry"):
        AuditWriter(MemorySink(), spool_path=tmp_path / "s", retry_initial=5, retry_max=1)


def test_record_starts_the_writer_and_the_idle_writer_stops(tmp_path):
    """No explicit start: the first event starts the task, which ends once everything is
    written (so no task lingers on a loop the writer's owner may abandon)."""
    sink = MemorySink()

    async def main():
        writer = AuditWriter(sink, spool_path=tmp_path / "s", flush_interval=0)
        for _ in range(500):
            writer.record(make_event())
        for _ in range(200):
            await asyncio.sleep(0)
            if writer._task is not None and writer._task.done():
                break
        assert writer._task is not None
        assert writer._task.done()
        assert writer.stats().delivered == 500
        writer.record(make_event())  # a quiet spell, then more work: a new task
        assert await writer.flush(timeout=5)
        await writer.close()

    asyncio.run(main())
    assert len(sink.events) == 501


def _later(item: tuple[int, float]) -> AuditEvent:
    n, at = item
    if n < 0:
        raise ValueError("audit event needs a non-empty tenant")
    return AuditEvent.new(
        at=at, tenant="acme", actor="a", operation="op", outcome="success", details={"n": n}
    )


def test_an_event_recorded_later_is_built_with_its_batch_and_keeps_its_moment(tmp_path):
    async def main():
        sink, clock = MemorySink(), FakeClock()
        built: list[int] = []

        def build(item: tuple[int, float]) -> AuditEvent:
            built.append(item[0])
            return _later(item)

        async with AuditWriter(sink, spool_path=tmp_path / "s", clock=clock) as writer:
            moments = []
            for n in range(5):
                moments.append(clock.time())
                writer.record_later(build, (n, clock.time()))
                writer.record(make_event(clock, n=100 + n))  # built ones interleave in order
                clock.advance(7.0)
            assert built == []  # nothing is built on the hot path
            assert await writer.flush()
        later = [e for e in sink.events if e.operation == "op"]
        assert [e.details["n"] for e in later] == list(range(5))
        assert [e.timestamp.timestamp() for e in later] == pytest.approx(moments)
        assert [e.details["n"] for e in sink.events] == [n for k in range(5) for n in (k, 100 + k)]
        assert writer.stats().delivered == 10

    asyncio.run(main())


def test_an_event_that_cannot_be_built_is_rejected_and_reported_and_the_rest_stored(tmp_path):
    async def main():
        sink, clock = MemorySink(), FakeClock()
        invalid: list[Exception] = []
        writer = AuditWriter(
            sink, spool_path=tmp_path / "s", clock=clock, batch_size=3, on_invalid=invalid.append
        )
        async with writer:
            for n in (0, -1, 1, -2, -3, -4, 2):  # the second batch holds no valid event
                writer.record_later(_later, (n, clock.time()))
            assert await writer.flush()  # a rejected event counts as done: flush returns
        assert [e.details["n"] for e in sink.events] == [0, 1, 2]
        assert [str(e) for e in invalid] == ["audit event needs a non-empty tenant"] * 4
        stats = writer.stats()
        assert (stats.recorded, stats.delivered, stats.rejected) == (7, 7, 4)

    asyncio.run(main())


def test_events_recorded_later_are_built_before_they_reach_the_spool(tmp_path):
    async def main():
        clock = FakeClock()
        writer = AuditWriter(
            DeadSink(), spool_path=tmp_path / "spool", clock=clock, queue_size=3, batch_size=1
        )
        # 0, -1 and 1 fill the queue; 2 and -2 are built at once, for the spool.
        for n in (0, -1, 1, 2, -2):
            writer.record_later(_later, (n, clock.time()))
        assert writer.stats().rejected == 1
        # The sink is down: the failed batch (0) and the queue behind it (-1, 1) are built as
        # they move to the spool, and -1 is rejected there.
        assert not await writer.flush(timeout=1.0)
        assert writer.stats().rejected == 2
        await writer.close(timeout=0.1)
        events, _, bad = Spool(tmp_path / "spool").read_batch(10)
        assert bad == 0
        assert [e.details["n"] for e in events] == [0, 1, 2]

    asyncio.run(main())

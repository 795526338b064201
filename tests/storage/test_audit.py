"""The SQL audit sink and verification on a real PostgreSQL: one hash chain per tenant stays
intact with concurrent writers on two engines (two "processes"), and replays are idempotent.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select, update

from connectors.audit.events import AuditEvent
from connectors.audit.query import verify, verify_all
from connectors.audit.sinks import SqlAuditSink
from connectors.clock import FakeClock
from connectors.storage.audit import AuditEventRow
from connectors.storage.db import Database

pytestmark = pytest.mark.server


def _event(clock: FakeClock, tenant: str, n: int) -> AuditEvent:
    return AuditEvent.new(
        clock=clock,
        tenant=tenant,
        actor="alice@acme.io",
        operation="create",
        outcome="success",
        connector="crm",
        target=f"Lead/{n}",
        details={"n": n},
    )


def test_concurrent_writers_on_two_engines_keep_every_chain_intact(pg_url):
    async def main() -> None:
        dbs = [Database(pg_url), Database(pg_url)]
        try:
            sinks = [SqlAuditSink(db) for db in dbs]
            clock = FakeClock()

            async def writer(sink: SqlAuditSink, w: int) -> None:
                for batch in range(10):
                    await sink.write_batch(
                        [
                            _event(clock, t, w * 1000 + batch * 10 + i)
                            for t in ("acme", "globex")
                            for i in range(3)
                        ]
                    )

            await asyncio.gather(*(writer(sinks[w % 2], w) for w in range(4)))
            results = await verify_all(dbs[0])
            assert set(results) == {"acme", "globex"}
            for result in results.values():
                assert result.ok, result.problems
                assert result.events == result.last_seq == 4 * 10 * 3
        finally:
            for db in dbs:
                await db.dispose()

    asyncio.run(main())


def test_a_replayed_batch_is_stored_once(pg_url):
    async def main() -> None:
        db = Database(pg_url)
        try:
            sink = SqlAuditSink(db)
            batch = [_event(FakeClock(), "acme", i) for i in range(5)]
            await sink.write_batch(batch)
            await sink.write_batch(batch)
            async with db.session() as session:
                count = await session.scalar(select(func.count()).select_from(AuditEventRow))
            assert count == 5
            assert (await verify(db, "acme")).ok
        finally:
            await db.dispose()

    asyncio.run(main())


def test_an_edited_row_is_detected(pg_url):
    async def main() -> None:
        db = Database(pg_url)
        try:
            await SqlAuditSink(db).write_batch([_event(FakeClock(), "acme", i) for i in range(3)])
            async with db.session() as session:
                await session.execute(
                    update(AuditEventRow).where(AuditEventRow.seq == 2).values(outcome="failure")
                )
            result = await verify(db, "acme")
            assert not result.ok
            assert result.first_problem is not None
        finally:
            await db.dispose()

    asyncio.run(main())

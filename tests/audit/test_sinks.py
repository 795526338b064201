"""SQL and JSONL sinks: chaining on write, concurrency, idempotent replays."""

from __future__ import annotations

import asyncio
import json

from sqlalchemy import select

from connectors.audit.chain import GENESIS, AuditChain, verify_chain
from connectors.audit.query import verify
from connectors.audit.sinks import AuditSink, JsonlAuditSink, SqlAuditSink, read_jsonl
from connectors.clock import FakeClock
from connectors.secrets.secret import Secret
from connectors.storage.audit import AuditChainHeadRow, AuditEventRow
from connectors.storage.db import Database

from ._support import MemorySink, database, db_url, make_event


async def _rows(db: Database, tenant: str) -> list[AuditEventRow]:
    async with db.session() as s:
        stmt = select(AuditEventRow).where(AuditEventRow.tenant == tenant)
        return list((await s.execute(stmt.order_by(AuditEventRow.seq))).scalars())


def test_sinks_satisfy_the_protocol(tmp_path):
    assert isinstance(JsonlAuditSink(tmp_path / "a.jsonl"), AuditSink)
    assert isinstance(MemorySink(), AuditSink)


def test_sql_sink_chains_each_tenant_separately_and_keeps_the_head(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            sink = SqlAuditSink(db)
            clock = FakeClock()
            events = [make_event(clock, tenant=t, n=i) for i in range(4) for t in ("a", "b")]
            await sink.write_batch(events[:5])
            await sink.write_batch(events[5:])
            rows_a = await _rows(db, "a")
            assert [r.seq for r in rows_a] == [1, 2, 3, 4]
            assert [r.details for r in rows_a] == ['{"n":0}', '{"n":1}', '{"n":2}', '{"n":3}']
            assert rows_a[0].prev_hash == GENESIS
            async with db.session() as s:
                head = await s.get(AuditChainHeadRow, "a")
            assert head is not None
            assert (head.last_seq, head.last_hash) == (4, rows_a[-1].hash)
            assert (await verify(db, "a")).ok
            assert (await verify(db, "b")).ok

    asyncio.run(main())


def test_sql_sink_stores_a_replayed_event_once(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            sink = SqlAuditSink(db)
            events = [make_event(n=i) for i in range(3)]
            await sink.write_batch(events)
            await sink.write_batch([*events[1:], make_event(n=3)])
            await sink.write_batch([events[0], events[0]])
            assert [r.seq for r in await _rows(db, "acme")] == [1, 2, 3, 4]
            assert (await verify(db, "acme")).ok

    asyncio.run(main())


def test_concurrent_writers_keep_a_valid_chain(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            other_db = Database(db_url(tmp_path))  # a second engine: like a second process
            try:
                sinks = [SqlAuditSink(db), SqlAuditSink(db), SqlAuditSink(other_db)]
                clock = FakeClock()

                async def writer(k: int) -> None:
                    for j in range(5):
                        batch = [
                            make_event(clock, tenant=t, n=k * 100 + j * 10 + i)
                            for i in range(4)
                            for t in ("a", "b")
                        ]
                        await sinks[k % 3].write_batch(batch)

                await asyncio.gather(*(writer(k) for k in range(9)))
            finally:
                await other_db.dispose()
            for tenant in ("a", "b"):
                result = await verify(db, tenant)
                assert result.ok, result.problems
                assert result.events == 9 * 5 * 4

    asyncio.run(main())


def test_a_keyed_sql_sink_verifies_only_with_its_key(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            chain = AuditChain(Secret("0123456789abcdef0123"))
            await SqlAuditSink(db, chain=chain).write_batch([make_event(n=i) for i in range(3)])
            assert (await verify(db, "acme", chain=chain)).ok
            assert not (await verify(db, "acme")).ok

    asyncio.run(main())


def test_jsonl_sink_writes_chained_lines_and_resumes_the_chain(tmp_path):
    async def main():
        path = tmp_path / "audit" / "events.jsonl"
        clock = FakeClock()
        await JsonlAuditSink(path).write_batch([make_event(clock, n=i) for i in range(3)])
        # a new sink (a restart) continues each tenant's chain from the file
        await JsonlAuditSink(path).write_batch(
            [make_event(clock, n=3), make_event(clock, tenant="b", n=0)]
        )
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        assert [(d["tenant"], d["seq"]) for d in lines] == [
            ("acme", 1),
            ("acme", 2),
            ("acme", 3),
            ("acme", 4),
            ("b", 1),
        ]
        records = [r for r in read_jsonl(path) if r.event.tenant == "acme"]
        assert verify_chain("acme", records, chain=AuditChain(), head=None, check_head=False).ok
        assert path.stat().st_mode & 0o777 == 0o600

    asyncio.run(main())


def test_jsonl_sink_cuts_a_torn_last_line_before_appending(tmp_path):
    async def main():
        path = tmp_path / "events.jsonl"
        await JsonlAuditSink(path).write_batch([make_event(n=0)])
        with path.open("a") as f:
            f.write('{"tenant": "acme", "seq"')  # a crash mid-write
        await JsonlAuditSink(path).write_batch([make_event(n=1)])
        records = list(read_jsonl(path))
        assert [r.seq for r in records] == [1, 2]
        assert verify_chain("acme", records, chain=AuditChain(), head=None, check_head=False).ok

    asyncio.run(main())

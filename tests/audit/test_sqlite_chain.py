"""The SQLite write path of the SQL sink: on the loop, in slices, never blocking on a lock."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import pytest
from sqlalchemy import func, select

import connectors.audit.sqlite_chain as sqlite_chain
from connectors.audit.query import verify
from connectors.audit.sinks import SqlAuditSink
from connectors.audit.writer import AuditWriter
from connectors.clock import FakeClock
from connectors.storage.audit import AuditChainHeadRow, AuditEventRow
from connectors.storage.db import Database

from ._support import database, make_event


async def _count(db: Database) -> int:
    async with db.session() as s:
        return int(await s.scalar(select(func.count()).select_from(AuditEventRow)) or 0)


def _path(tmp_path):
    return tmp_path / "audit.db"


def test_a_file_database_is_written_by_the_loop_writer_and_verifies(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            sink = SqlAuditSink(db)
            assert sink._sqlite is not None
            clock = FakeClock()
            events = [make_event(clock, tenant=t, n=i) for i in range(150) for t in ("a", "b")]
            await sink.write_batch(events)
            await sink.write_batch(events[:10])  # a replay: stored once
            await sink.aclose()
            assert await _count(db) == 300
            for tenant in ("a", "b"):
                result = await verify(db, tenant)
                assert result.ok, result.problems
                assert result.last_seq == 150

    asyncio.run(main())


def test_other_databases_keep_the_core_path(tmp_path):
    for url in ("sqlite+aiosqlite://", "sqlite+aiosqlite:///:memory:", "postgresql+asyncpg://h/db"):
        assert SqlAuditSink(Database(url))._sqlite is None
    assert SqlAuditSink(Database(f"sqlite+aiosqlite:///{tmp_path}/x.db?timeout=3"))._sqlite is None


def test_only_a_batch_holding_stored_ids_looks_them_up(tmp_path, monkeypatch):
    lookups: list[int] = []
    real = sqlite_chain.SqliteChainWriter._stored_ids

    async def counting(conn, ids):
        lookups.append(len(ids))
        return await real(conn, ids)

    monkeypatch.setattr(sqlite_chain.SqliteChainWriter, "_stored_ids", staticmethod(counting))

    async def main():
        async with database(tmp_path) as db:
            sink = SqlAuditSink(db)
            clock = FakeClock()
            events = [make_event(clock, n=i) for i in range(40)]
            await sink.write_batch(events[:30])
            assert lookups == []  # fresh: the unique index is the only check
            await sink.write_batch(events[20:])  # 10 stored, 10 new (a replay from the spool)
            assert lookups == [20]
            await sink.aclose()
            assert await _count(db) == 40
            result = await verify(db, "acme")
            assert result.ok, result.problems
            assert result.last_seq == 40

    asyncio.run(main())


def test_a_long_batch_lets_the_loop_run_between_slices(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            sink = SqlAuditSink(db)
            ticks = 0
            done = False

            async def ticker():
                nonlocal ticks
                while not done:
                    ticks += 1
                    await asyncio.sleep(0)

            task = asyncio.create_task(ticker())
            await asyncio.sleep(0)
            events = [make_event(n=i) for i in range(sqlite_chain.SLICE * 4)]
            before = ticks
            await sink.write_batch(events)
            done = True
            await task
            await sink.aclose()
            assert ticks - before >= 3  # at least once between each pair of slices
            assert (await verify(db, "acme")).ok

    asyncio.run(main())


def test_a_locked_database_is_waited_for_without_blocking_the_loop(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            sink = SqlAuditSink(db)
            await sink.write_batch([make_event(n=0)])
            other = sqlite3.connect(_path(tmp_path), isolation_level=None)
            other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            write = asyncio.create_task(sink.write_batch([make_event(n=1)]))
            started = time.monotonic()
            await asyncio.sleep(0.2)  # the loop is free meanwhile
            assert time.monotonic() - started < 1.0
            assert not write.done()
            other.execute("COMMIT")
            other.close()
            await asyncio.wait_for(write, 5)
            await sink.aclose()
            assert await _count(db) == 2

    asyncio.run(main())


def test_a_lock_held_too_long_fails_the_batch_and_the_writer_spools_it(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_chain, "LOCK_WAIT", 0.2)

    async def main():
        async with database(tmp_path) as db:
            other = sqlite3.connect(_path(tmp_path), isolation_level=None)
            other.execute("BEGIN IMMEDIATE")
            sink = SqlAuditSink(db)
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                await sink.write_batch([make_event(n=0)])
            writer = AuditWriter(sink, spool_path=tmp_path / "spool.jsonl", retry_initial=0.05)
            async with writer:
                writer.record(make_event(n=1))
                assert not await writer.flush(timeout=0.5)  # still locked: kept in the spool
                assert writer.stats().pending_spool == 1
                other.execute("COMMIT")
                other.close()
                assert await writer.flush(timeout=5)
            assert await _count(db) == 1
            assert (await verify(db, "acme")).ok

    asyncio.run(main())


def test_a_failure_mid_batch_stores_nothing(tmp_path, monkeypatch):
    async def main():
        async with database(tmp_path) as db:
            sink = SqlAuditSink(db)
            await sink.write_batch([make_event(n=0)])
            calls = 0
            real = sqlite_chain.SqliteChainWriter._insert

            def failing(conn, rows):
                nonlocal calls
                calls += 1
                if calls == 2:
                    raise sqlite3.OperationalError("disk I/O error")
                real(conn, rows)

            monkeypatch.setattr(sqlite_chain.SqliteChainWriter, "_insert", staticmethod(failing))
            events = [make_event(n=i) for i in range(1, sqlite_chain.SLICE * 2 + 1)]
            with pytest.raises(sqlite3.OperationalError):
                await sink.write_batch(events)
            monkeypatch.setattr(sqlite_chain.SqliteChainWriter, "_insert", staticmethod(real))
            assert await _count(db) == 1
            async with db.session() as s:
                head = await s.get(AuditChainHeadRow, "acme")
            assert head is not None
            assert head.last_seq == 1
            await sink.write_batch(events)  # the same batch again, now whole
            await sink.aclose()
            assert await _count(db) == 1 + len(events)
            assert (await verify(db, "acme")).ok

    asyncio.run(main())


def test_checkpoints_run_in_a_thread_and_close_waits_for_them(tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_chain, "CHECKPOINT_ROWS", 50)
    threads: list[str] = []
    real = sqlite_chain._passive_checkpoint

    def spy(path):
        import threading

        threads.append(threading.current_thread().name)
        real(path)

    monkeypatch.setattr(sqlite_chain, "_passive_checkpoint", spy)

    async def main():
        async with database(tmp_path) as db:
            sink = SqlAuditSink(db)
            await sink.write_batch([make_event(n=i) for i in range(60)])
            await sink.aclose()
            assert await _count(db) == 60

    asyncio.run(main())
    assert len(threads) == 1
    assert threads[0] != "MainThread"
    wal = tmp_path / "audit.db-wal"
    assert not wal.exists() or wal.stat().st_size < 200_000


def test_the_wal_file_stays_bounded_under_a_steady_stream_of_batches(tmp_path, monkeypatch):
    # SQLite reuses the WAL from its start only when a write begins after a checkpoint copied
    # all of it; batches written while a checkpoint runs would keep it from ever catching up.
    monkeypatch.setattr(sqlite_chain, "CHECKPOINT_ROWS", 200)
    real = sqlite_chain._passive_checkpoint

    def slow(path):
        time.sleep(0.02)  # a checkpoint that takes a while, as a large one does
        real(path)

    monkeypatch.setattr(sqlite_chain, "_passive_checkpoint", slow)
    wal = tmp_path / "audit.db-wal"

    async def main():
        async with database(tmp_path) as db:
            sink = SqlAuditSink(db)
            sizes = []
            for batch in range(40):
                await sink.write_batch([make_event(n=batch * 50 + i) for i in range(50)])
                await asyncio.sleep(0.001)  # a busy writer: the next batch is soon ready
                sizes.append(wal.stat().st_size)
            await sink.aclose()
            assert await _count(db) == 2000
            assert (await verify(db, "acme")).ok
            return sizes

    sizes = asyncio.run(main())
    # Never started over, the WAL holds all 2,000 rows (~4.5 MB); started over after each
    # checkpoint, it stays near the largest stretch between two of them (~0.6 MB).
    assert max(sizes) < 1_500_000, sizes

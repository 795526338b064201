"""Where audit events go: a SQL table (SQLite or PostgreSQL) or a JSONL file.

A sink receives batches, in order, from the :class:`~connectors.audit.writer.AuditWriter`, and
links each event into its tenant's hash chain as it stores it. Sinks are idempotent by event id
where they can be (:class:`SqlAuditSink`): the writer delivers at least once, so an event replayed
from the spool after a crash is stored once.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol, cast, runtime_checkable

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from connectors.audit._rows import ROW_COLUMNS, Row, chain_rows
from connectors.audit.chain import GENESIS, AuditChain, ChainedEvent
from connectors.audit.events import AuditEvent
from connectors.audit.sqlite_chain import SqliteChainWriter
from connectors.storage.audit import AuditChainHeadRow, AuditEventRow
from connectors.storage.db import Database

__all__ = ["AuditSink", "JsonlAuditSink", "SqlAuditSink", "read_jsonl"]

_EVENTS = cast(Table, AuditEventRow.__table__)
_HEADS = cast(Table, AuditChainHeadRow.__table__)

# Core statements, built once (their compiled form is cached by the engine).
_INSERT_EVENTS = insert(_EVENTS)
_NEW_HEADS_PG = pg_insert(_HEADS).on_conflict_do_nothing()
_NEW_HEADS_SQLITE = sqlite_insert(_HEADS).on_conflict_do_nothing()
_SELECT_HEADS = (
    select(_HEADS.c.tenant, _HEADS.c.last_seq, _HEADS.c.last_hash)
    .where(_HEADS.c.tenant.in_(bindparam("tenants", expanding=True)))
    .order_by(_HEADS.c.tenant)
    .with_for_update()
)
_STORED_IDS = select(_EVENTS.c.event_id).where(
    _EVENTS.c.event_id.in_(bindparam("ids", expanding=True))
)
_UPDATE_HEAD = (
    update(_HEADS)
    .where(_HEADS.c.tenant == bindparam("b_tenant"))
    .values(last_seq=bindparam("b_seq"), last_hash=bindparam("b_hash"))
)
#: Event ids per ``IN (...)`` lookup (well under SQLite's and asyncpg's parameter limits).
_ID_CHUNK = 500

#: Attempts at one batch when another writer (process) won the race for the same chain link.
_CONFLICT_ATTEMPTS = 3


@runtime_checkable
class AuditSink(Protocol):
    """Stores audit events. ``write_batch`` is all-or-nothing and keeps the given order."""

    async def write_batch(self, events: Sequence[AuditEvent]) -> None: ...


def _group_by_tenant(events: Sequence[AuditEvent]) -> dict[str, list[AuditEvent]]:
    groups: dict[str, list[AuditEvent]] = {}
    seen: set[str] = set()
    for event in events:
        if event.id in seen:
            continue
        seen.add(event.id)
        groups.setdefault(event.tenant, []).append(event)
    return groups


class SqlAuditSink:
    """Writes events to ``audit_events`` and advances ``audit_chain_heads`` in one transaction.

    Concurrency: within a process, batches are serialised by a lock; across processes the head
    row is locked first (``SELECT ... FOR UPDATE`` on PostgreSQL; on SQLite the first statement
    is a write, which takes the database write lock), and the ``(tenant, seq)`` primary key makes
    a forked chain impossible even if that ever failed. Events whose id is already stored are
    skipped, so replays are harmless.

    Cost: a batch is a handful of Core statements on one connection (no ORM session or unit of
    work): make sure the heads exist, lock and read them, look up already stored ids, then one
    ``executemany`` each for the head updates and the event rows. Links are computed in Python by
    :func:`~connectors.audit._rows.chain_rows`. A SQLite database in a file is written on the
    event loop instead, by :class:`~connectors.audit.sqlite_chain.SqliteChainWriter` (the same
    rows and chain; decision 0010); :meth:`aclose` closes its connection.
    """

    def __init__(self, db: Database, *, chain: AuditChain | None = None) -> None:
        self._db = db
        self._chain = chain or AuditChain()
        self._lock = asyncio.Lock()
        path = _sqlite_file(db.url)
        self._sqlite = None if path is None else SqliteChainWriter(path, self._chain)
        self._postgres = db.engine.dialect.name == "postgresql"
        self._new_heads = _NEW_HEADS_PG if self._postgres else _NEW_HEADS_SQLITE
        # PostgreSQL only: tenants whose head row was seen, so steady-state batches skip the
        # head INSERT (SQLite always sends it: it is the write that takes the database lock).
        self._known: set[str] = set()

    @property
    def chain(self) -> AuditChain:
        return self._chain

    async def write_batch(self, events: Sequence[AuditEvent]) -> None:
        if not events:
            return
        groups = _group_by_tenant(events)
        async with self._lock:
            if self._sqlite is not None:
                await self._sqlite.write(groups)
                return
            for attempt in range(_CONFLICT_ATTEMPTS):
                try:
                    async with self._db.engine.begin() as conn:
                        await self._write(conn, groups)
                    return
                except IntegrityError:
                    if attempt == _CONFLICT_ATTEMPTS - 1:
                        raise

    async def aclose(self) -> None:
        """Release what the sink holds open (the SQLite connection; nothing otherwise). A later
        batch opens it again."""
        if self._sqlite is not None:
            async with self._lock:
                await self._sqlite.close()

    async def _write(self, conn: AsyncConnection, groups: dict[str, list[AuditEvent]]) -> None:
        tenants = sorted(groups)
        heads = await self._lock_heads(conn, tenants)
        ids = [e.id for evs in groups.values() for e in evs]
        stored: set[str] = set()
        for start in range(0, len(ids), _ID_CHUNK):
            result = await conn.execute(_STORED_IDS, {"ids": ids[start : start + _ID_CHUNK]})
            stored.update(result.scalars())
        rows: list[Row] = []
        new_heads: list[dict[str, object]] = []
        for tenant in tenants:
            fresh = groups[tenant]
            if stored:
                fresh = [e for e in fresh if e.id not in stored]
                if not fresh:
                    continue
            last_seq, last_hash = heads[tenant]
            chained, last_seq, last_hash = chain_rows(self._chain, last_seq, last_hash, fresh)
            rows.extend(chained)
            new_heads.append({"b_tenant": tenant, "b_seq": last_seq, "b_hash": last_hash})
        if rows:
            # One executemany each: every statement is a round trip to the database.
            await conn.execute(_UPDATE_HEAD, new_heads)
            named = [dict(zip(ROW_COLUMNS, r, strict=True)) for r in rows]
            await conn.execute(_INSERT_EVENTS, named)

    async def _lock_heads(
        self, conn: AsyncConnection, tenants: list[str]
    ) -> dict[str, tuple[int, str]]:
        missing = [t for t in tenants if t not in self._known] if self._postgres else tenants
        heads: dict[str, tuple[int, str]] = {}
        for _ in range(2):
            if missing:
                await conn.execute(
                    self._new_heads,
                    [{"tenant": t, "last_seq": 0, "last_hash": GENESIS} for t in missing],
                )
            result = await conn.execute(_SELECT_HEADS, {"tenants": tenants})
            heads = {tenant: (seq, digest) for tenant, seq, digest in result}
            missing = [t for t in tenants if t not in heads]
            if not missing:
                break
        if missing:
            raise RuntimeError(f"audit chain heads could not be created for {len(missing)} tenants")
        if self._postgres:
            self._known.update(tenants)
        return heads


def _sqlite_file(url: str) -> Path | None:
    """The file of a plain SQLite URL (``sqlite+aiosqlite:///path``); ``None`` for any other
    database, an in-memory one, or a URL with options (left to the driver)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.query:
        return None
    name = parsed.database
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name)


class JsonlAuditSink:
    """Appends chained events to a JSONL file, one object per line, fsync'd per batch.

    The file is the chain: each line carries ``seq``, ``prev_hash`` and ``hash``. Heads are
    recovered by reading the file on first use. Unlike the SQL sink it is not idempotent: a batch
    replayed after a crash may appear twice (each copy with its own ``seq``), which verification
    accepts and readers can de-duplicate by ``id``.
    """

    def __init__(self, path: Path, *, chain: AuditChain | None = None) -> None:
        self.path = Path(path)
        self._chain = chain or AuditChain()
        self._heads: dict[str, tuple[int, str]] | None = None
        self._lock = asyncio.Lock()

    async def write_batch(self, events: Sequence[AuditEvent]) -> None:
        if not events:
            return
        async with self._lock:
            await asyncio.to_thread(self._write_sync, list(events))

    def _write_sync(self, events: list[AuditEvent]) -> None:
        if self._heads is None:
            self._heads = self._recover()
        heads = dict(self._heads)
        lines: list[str] = []
        seen: set[str] = set()
        for event in events:
            if event.id in seen:
                continue
            seen.add(event.id)
            last_seq, last_hash = heads.get(event.tenant, (0, GENESIS))
            digest = self._chain.link(last_hash, last_seq + 1, event)
            record = ChainedEvent(event, last_seq + 1, last_hash, digest)
            lines.append(json.dumps(record.to_dict(), separators=(",", ":")) + "\n")
            heads[event.tenant] = (record.seq, digest)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, "".join(lines).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self._heads = heads

    def _recover(self) -> dict[str, tuple[int, str]]:
        heads: dict[str, tuple[int, str]] = {}
        if not self.path.exists():
            return heads
        for record in read_jsonl(self.path):
            heads[record.event.tenant] = (record.seq, record.hash)
        _truncate_torn_tail(self.path)
        return heads


def _truncate_torn_tail(path: Path) -> None:
    """Cut a last line that a crash left without its newline, so appends start clean."""
    with open(path, "rb+") as handle:
        data = handle.read()
        if data and not data.endswith(b"\n"):
            handle.truncate(data.rfind(b"\n") + 1)


def read_jsonl(path: Path) -> Iterator[ChainedEvent]:
    """Read back the chained events of a JSONL sink file (a torn last line is skipped)."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.endswith("\n"):
                break
            data = json.loads(line)
            seq, prev_hash, digest = data.pop("seq"), data.pop("prev_hash"), data.pop("hash")
            yield ChainedEvent(AuditEvent.from_dict(data), int(seq), str(prev_hash), str(digest))

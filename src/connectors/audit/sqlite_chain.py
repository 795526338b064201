"""The SQLite write path of the SQL audit sink: batches linked and stored on the event loop.

The embedded default database is a SQLite file, and the audit trail is its busiest writer: one
row per operation. Through the async driver every statement is a hop to its worker thread, and a
busy event loop pays for each hop: on a 2-core machine the thread's GIL hand-offs cost every
operation 15-25 % more CPU than the same writes made on the loop itself (decision 0010). So
:class:`SqliteChainWriter` keeps a plain ``sqlite3`` connection of its own and writes on the loop
thread, in slices that keep each stall short:

- ``BEGIN IMMEDIATE`` takes the database write lock without waiting: the connection's busy
  timeout is 0, and a busy database is retried with ``await asyncio.sleep`` (another writer on
  this loop must be able to finish meanwhile), up to :data:`LOCK_WAIT` seconds;
- heads are created if missing and read, then the events are linked and inserted :data:`SLICE`
  rows at a time (one multi-row ``INSERT`` each, ~0.2 ms), yielding to the loop between slices;
- an id the table already holds (a replay from the spool) makes the unique index refuse the
  batch: it is written again, this time looking up stored ids first and skipping them;
- the heads are updated and the transaction committed; any failure rolls it back whole.

Commits do not sync to disk (WAL with ``synchronous=NORMAL``); checkpoints do, so this connection
never checkpoints by itself: after every :data:`CHECKPOINT_ROWS` rows a passive checkpoint runs
in a worker thread, on a connection of its own. The next batch waits for it (the events wait in
the writer's memory queue meanwhile): SQLite starts the WAL file over only when a write begins
after a checkpoint copied all of it, and one that ran beside a stream of writes never would, so
under steady load the file grew without end and every read searched a longer WAL index.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from connectors.audit._rows import ROW_COLUMNS, chain_rows
from connectors.audit.chain import GENESIS, AuditChain
from connectors.audit.events import AuditEvent

__all__ = ["CHECKPOINT_ROWS", "LOCK_WAIT", "SLICE", "SqliteChainWriter"]

#: Rows linked and inserted per slice (one statement, ~0.2 ms; the loop runs other work between
#: slices, so requests in flight keep going: with 64-row slices a busy client lost ~3 % of its
#: throughput to the pauses).
SLICE: Final = 16
#: Seconds to wait for the database write lock before the batch fails (and is spooled).
LOCK_WAIT: Final = 10.0
#: Rows between two passive WAL checkpoints (about SQLite's default of 1,000 pages).
CHECKPOINT_ROWS: Final = 4096
#: Event ids per ``IN (...)`` lookup, one lookup per slice of the loop's time.
_ID_CHUNK: Final = 4 * SLICE
_FIRST_BACKOFF: Final = 0.001
_MAX_BACKOFF: Final = 0.05

_ROW_MARKS: Final = f"({', '.join('?' * len(ROW_COLUMNS))})"
_HEAD_INSERT: Final = (
    "INSERT INTO audit_chain_heads (tenant, last_seq, last_hash) VALUES (?, 0, ?) "
    "ON CONFLICT DO NOTHING"
)
_HEAD_SELECT: Final = "SELECT last_seq, last_hash FROM audit_chain_heads WHERE tenant = ?"
_HEAD_UPDATE: Final = "UPDATE audit_chain_heads SET last_seq = ?, last_hash = ? WHERE tenant = ?"


@functools.cache
def _insert(rows: int) -> str:
    """The ``INSERT`` of ``rows`` event rows (constant names, no input): sizes are powers of
    two up to :data:`SLICE`, so a handful of statements stay prepared in the driver's cache."""
    values = ", ".join([_ROW_MARKS] * rows)
    return f"INSERT INTO audit_events ({', '.join(ROW_COLUMNS)}) VALUES {values}"  # noqa: S608


@functools.cache
def _stored(ids: int) -> str:
    marks = ", ".join("?" * ids)
    return f"SELECT event_id FROM audit_events WHERE event_id IN ({marks})"  # noqa: S608


def _locked(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", None) in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class SqliteChainWriter:
    """Links and stores audit batches in the SQLite file at ``path`` (see the module docstring).

    Belongs to one event loop (the connection is opened on first use, on that loop's thread);
    :meth:`close` it from there.
    """

    def __init__(self, path: Path, chain: AuditChain) -> None:
        self.path = path
        self._chain = chain
        self._conn: sqlite3.Connection | None = None
        self._since_checkpoint = 0
        self._checkpoint: asyncio.Task[None] | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=0)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("PRAGMA wal_autocheckpoint=0")
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    async def write(self, groups: dict[str, list[AuditEvent]]) -> None:
        """Store each tenant's events after its chain head, all or nothing; ids already stored
        are skipped."""
        conn = self._connection()
        checkpoint = self._checkpoint
        if checkpoint is not None and not checkpoint.done():
            await asyncio.wait([checkpoint])  # its failure is harmless: the next one catches up
        try:
            # A batch fresh from memory holds no stored id, so none is looked up first: the
            # unique index on event_id refuses one if it does, and the batch is then written
            # again, skipping the stored ones (a replay from the spool, or a retried batch).
            await self._transaction(conn, groups, skip_stored=False)
        except sqlite3.IntegrityError:
            await self._transaction(conn, groups, skip_stored=True)
        self._since_checkpoint += sum(len(events) for events in groups.values())
        if self._since_checkpoint >= CHECKPOINT_ROWS:
            self._start_checkpoint()

    async def _transaction(
        self, conn: sqlite3.Connection, groups: dict[str, list[AuditEvent]], *, skip_stored: bool
    ) -> None:
        await self._begin(conn)
        try:
            await self._write(conn, groups, skip_stored)
            conn.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise

    async def _begin(self, conn: sqlite3.Connection) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LOCK_WAIT
        backoff = _FIRST_BACKOFF
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not _locked(exc) or loop.time() + backoff > deadline:
                    raise
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)

    async def _write(
        self, conn: sqlite3.Connection, groups: dict[str, list[AuditEvent]], skip_stored: bool
    ) -> None:
        stored: set[str] = set()
        if skip_stored:
            ids = [e.id for events in groups.values() for e in events]
            stored = await self._stored_ids(conn, ids)
        for tenant in sorted(groups):
            fresh = [e for e in groups[tenant] if e.id not in stored] if stored else groups[tenant]
            if not fresh:
                continue
            conn.execute(_HEAD_INSERT, (tenant, GENESIS))
            head = conn.execute(_HEAD_SELECT, (tenant,)).fetchone()
            if head is None:  # pragma: no cover - inserted just above, in this transaction
                raise RuntimeError("the audit chain head could not be created")
            last_seq, last_hash = head
            for start in range(0, len(fresh), SLICE):
                if start:
                    await asyncio.sleep(0)  # let the loop run between slices
                rows, last_seq, last_hash = chain_rows(
                    self._chain, last_seq, last_hash, fresh[start : start + SLICE]
                )
                self._insert(conn, rows)
            conn.execute(_HEAD_UPDATE, (last_seq, last_hash, tenant))

    @staticmethod
    async def _stored_ids(conn: sqlite3.Connection, ids: Sequence[str]) -> set[str]:
        stored: set[str] = set()
        for start in range(0, len(ids), _ID_CHUNK):
            if start:
                await asyncio.sleep(0)
            chunk = ids[start : start + _ID_CHUNK]
            stored.update(row[0] for row in conn.execute(_stored(len(chunk)), chunk))
        return stored

    @staticmethod
    def _insert(conn: sqlite3.Connection, rows: list[tuple[object, ...]]) -> None:
        """One statement per power-of-two run (a slice of 16: one; 13 rows: 8, 4, 1)."""
        start, size = 0, SLICE
        while start < len(rows):
            while size > len(rows) - start:
                size //= 2
            flat = tuple(itertools.chain.from_iterable(rows[start : start + size]))
            conn.execute(_insert(size), flat)
            start += size

    # --- checkpoints ----------------------------------------------------------------------------

    def _start_checkpoint(self) -> None:
        if self._checkpoint is not None and not self._checkpoint.done():
            return  # one at a time; the next batch tries again
        self._since_checkpoint = 0
        self._checkpoint = asyncio.get_running_loop().create_task(
            asyncio.to_thread(_passive_checkpoint, self.path)
        )
        self._checkpoint.add_done_callback(_retrieve)

    async def close(self) -> None:
        """Wait for a running checkpoint and close the connection."""
        if self._checkpoint is not None:
            with contextlib.suppress(Exception):
                await self._checkpoint
            self._checkpoint = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _passive_checkpoint(path: Path) -> None:
    """Copy the WAL into the database file as far as readers allow (never waits for them)."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
    finally:
        conn.close()


def _retrieve(task: asyncio.Task[None]) -> None:
    # A failed checkpoint is harmless (the next one copies the rest): keep asyncio from
    # reporting it as never retrieved.
    if not task.cancelled():
        task.exception()

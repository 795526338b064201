"""The database handle: engine creation, sessions and schema set-up.

Async drivers' connections belong to the event loop that opened them, and a Hub may be used from
several loops (the sync face's background loop, a test's ``asyncio.run``, a job runner). So the
engine is chosen per loop:

- by default, connections are not pooled (``NullPool``): each session opens its own and closes
  it, which is safe from any loop at the cost of a connect per session (under a millisecond for
  SQLite);
- a long-running owner of one loop (the server, a worker, a benchmark) calls
  :meth:`Database.pool_on_this_loop` once: that loop then gets a pooled engine, disposed by
  :meth:`Database.dispose` from the same loop. Pooled connections are never shared across loops.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import AsyncAdaptedQueuePool, NullPool

__all__ = ["Base", "Database", "default_sqlite_url", "metadata"]

_NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=_NAMING)


class Base(DeclarativeBase):
    """Declarative base shared by every table module."""

    metadata = metadata


def default_sqlite_url(data_dir: Path) -> str:
    """The embedded default: a SQLite file under the data directory (created 0700)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(data_dir, 0o700)
    return f"sqlite+aiosqlite:///{data_dir / 'connectors.db'}"


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class Database:
    """Async engines (one per event loop, see the module docstring) plus session factories.

    ``url`` is any SQLAlchemy async URL: ``sqlite+aiosqlite:///path`` (default) or
    ``postgresql+asyncpg://...``.
    """

    def __init__(self, url: str, *, echo: bool = False, pool_size: int = 5) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.dialect = make_url(url).get_backend_name()
        self._echo = echo
        self._pool_size = pool_size
        self._unpooled: AsyncEngine | None = None
        self._unpooled_sessions: async_sessionmaker[AsyncSession] | None = None
        self._pooled_loop: asyncio.AbstractEventLoop | None = None
        self._pooled: AsyncEngine | None = None
        self._pooled_sessions: async_sessionmaker[AsyncSession] | None = None

    def _create(self, *, pooled: bool) -> AsyncEngine:
        kwargs: dict[str, object] = {"echo": self._echo}
        if pooled:
            kwargs.update(
                poolclass=AsyncAdaptedQueuePool,
                pool_size=self._pool_size,
                max_overflow=self._pool_size * 2,
                pool_pre_ping=not self.is_sqlite,
            )
        else:
            kwargs["poolclass"] = NullPool
        engine = create_async_engine(self.url, **kwargs)
        if self.is_sqlite:
            event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine

    def _on_pooled_loop(self) -> bool:
        if self._pooled_loop is None:
            return False
        try:
            return asyncio.get_running_loop() is self._pooled_loop
        except RuntimeError:
            return False

    @property
    def engine(self) -> AsyncEngine:
        """The engine for the running loop: pooled on the pinned loop, unpooled elsewhere."""
        if self._on_pooled_loop():
            assert self._pooled is not None
            return self._pooled
        if self._unpooled is None:
            self._unpooled = self._create(pooled=False)
        return self._unpooled

    @property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        if self._on_pooled_loop():
            assert self._pooled_sessions is not None
            return self._pooled_sessions
        if self._unpooled_sessions is None:
            self._unpooled_sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        return self._unpooled_sessions

    def pool_on_this_loop(self) -> None:
        """Pool connections for the running loop (call from the loop that will own them, and
        :meth:`dispose` from it before it ends). A second, different loop keeps the first."""
        loop = asyncio.get_running_loop()
        if self._pooled_loop is not None and not self._pooled_loop.is_closed():
            return
        self._pooled_loop = loop
        self._pooled = self._create(pooled=True)
        self._pooled_sessions = async_sessionmaker(self._pooled, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session inside a transaction: committed on success, rolled back on error."""
        async with self.sessions() as session, session.begin():
            yield session

    async def create_all(self) -> None:
        """Create every table known to :data:`metadata` (tests and the embedded default)."""
        async with self.engine.begin() as conn:
            await conn.run_sync(metadata.create_all)

    async def dispose(self) -> None:
        """Close pooled connections (when called from the pinned loop) and the unpooled engine."""
        if self._pooled is not None and self._on_pooled_loop():
            pooled, self._pooled, self._pooled_sessions = self._pooled, None, None
            self._pooled_loop = None
            await pooled.dispose()
        if self._unpooled is not None:
            await self._unpooled.dispose()

    @property
    def sync_engine(self) -> Engine:
        return self.engine.sync_engine

"""Helpers for the access tests: a temporary database and a statement counter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import event

import connectors.storage.access
import connectors.storage.audit  # noqa: F401  (registers the tables on the metadata)
from connectors.storage.db import Database


@asynccontextmanager
async def database(directory: Path) -> AsyncIterator[Database]:
    db = Database(f"sqlite+aiosqlite:///{directory / 'access.db'}")
    await db.create_all()
    try:
        yield db
    finally:
        await db.dispose()


class StatementCounter:
    """Counts SQL statements sent through a database's engine."""

    def __init__(self, db: Database) -> None:
        self.count = 0
        event.listen(db.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, *args: object) -> None:
        self.count += 1

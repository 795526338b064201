"""Fixtures of the storage tests: a real PostgreSQL (one per session), a fresh database each."""

from __future__ import annotations

import asyncio

import pytest

from connectors.storage.db import Database
from connectors.storage.migrate import migrate
from tests.servers.postgres import PostgresServer, postgres_server

__all__ = ["postgres_server"]


@pytest.fixture
def pg_url(postgres_server: PostgresServer) -> str:
    """An empty PostgreSQL database migrated to the newest revision."""
    url = postgres_server.create_database()

    async def setup() -> None:
        db = Database(url)
        try:
            await migrate(db)
        finally:
            await db.dispose()

    asyncio.run(setup())
    return url

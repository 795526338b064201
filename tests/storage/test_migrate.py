"""Migrations: an empty SQLite or PostgreSQL database upgraded to head matches the models exactly.

The comparison is Alembic's autogenerate against ``connectors.storage.db.metadata`` with every
table module loaded: a table, column, index or constraint added to a model without a migration
makes these tests fail, which is the point.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from connectors.storage.db import Database
from connectors.storage.migrate import (
    TABLE_MODULES,
    alembic_config,
    current_revision,
    ensure_schema,
    load_tables,
    migrate,
)
from tests.servers.postgres import PostgresServer


def _differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, load_tables()))


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names())


async def _migrate_and_compare(url: str) -> tuple[str | None, list[object], set[str]]:
    db = Database(url)
    try:
        await migrate(db)
        await migrate(db)  # a second run is a no-op
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(_differences)
            tables = await conn.run_sync(_tables)
        return await current_revision(db), diff, tables
    finally:
        await db.dispose()


def _head() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def test_one_linear_history_with_a_head():
    script = ScriptDirectory.from_config(alembic_config())
    assert len(script.get_heads()) == 1
    assert script.get_base() is not None


def test_every_table_module_is_importable_and_on_the_metadata():
    metadata = load_tables()
    assert len(TABLE_MODULES) >= 6
    assert {"credentials", "audit_events", "access_api_tokens", "connector_jobs"} <= set(
        metadata.tables
    )


def test_empty_sqlite_upgraded_to_head_matches_the_models(tmp_path: Path):
    revision, diff, tables = asyncio.run(
        _migrate_and_compare(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
    )
    assert revision == _head()
    assert diff == []
    assert set(load_tables().tables) <= tables


@pytest.mark.server
def test_empty_postgresql_upgraded_to_head_matches_the_models(postgres_server: PostgresServer):
    revision, diff, tables = asyncio.run(_migrate_and_compare(postgres_server.create_database()))
    assert revision == _head()
    assert diff == []
    assert set(load_tables().tables) <= tables


def test_a_database_never_migrated_has_no_revision(tmp_path: Path):
    async def main() -> str | None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'none.db'}")
        try:
            return await current_revision(db)
        finally:
            await db.dispose()

    assert asyncio.run(main()) is None


def test_ensure_schema_adopts_a_database_made_by_create_all(tmp_path: Path):
    async def main() -> tuple[str | None, list[object]]:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'legacy.db'}")
        try:
            load_tables()
            await db.create_all()
            await ensure_schema(db)
            await ensure_schema(db)
            async with db.engine.connect() as conn:
                diff = await conn.run_sync(_differences)
            return await current_revision(db), diff
        finally:
            await db.dispose()

    assert asyncio.run(main()) == (_head(), [])


def test_ensure_schema_migrates_an_empty_database(tmp_path: Path):
    async def main() -> str | None:
        db = Database(f"sqlite+aiosqlite:///{tmp_path / 'new.db'}")
        try:
            await ensure_schema(db)
            return await current_revision(db)
        finally:
            await db.dispose()

    assert asyncio.run(main()) == _head()

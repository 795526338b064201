"""The Alembic environment: our shared metadata as the target, sync or async engines.

Run from code (:func:`connectors.storage.migrate.migrate`) a connection is handed in through
``config.attributes["connection"]``; run from the ``alembic`` command line, the database URL
comes from ``sqlalchemy.url`` or ``$CONNECTOR_DATABASE_URL`` and an async engine is created.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from connectors.storage.migrate import load_tables

target_metadata = load_tables()


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: later revisions rebuild tables in batch mode.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def _run(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.config.get_main_option("sqlalchemy.url") or os.environ.get(
        "CONNECTOR_DATABASE_URL"
    )
    if not url:
        raise RuntimeError("set sqlalchemy.url or CONNECTOR_DATABASE_URL to run migrations")
    return url


async def _run_async() -> None:
    engine = create_async_engine(_url())
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    given = context.config.attributes.get("connection")
    if given is not None:
        _run(given)
    else:
        asyncio.run(_run_async())

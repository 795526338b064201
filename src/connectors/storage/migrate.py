"""Schema migrations: upgrade a database to the newest Alembic revision, from code.

``await migrate(db)`` works on SQLite and PostgreSQL alike and needs no ``alembic.ini``: the
Alembic configuration is built here and the migration runs on the database's own async engine.
Migrations live in ``connectors/storage/migrations/versions``; :data:`TABLE_MODULES` lists every
module that puts tables on :data:`connectors.storage.db.metadata`, so that the migration
environment (and ``alembic revision --autogenerate``) sees the complete schema.

For the command line (new revisions)::

    CONNECTOR_DATABASE_URL=sqlite+aiosqlite:///./dev.db \\
        alembic -c src/connectors/storage/migrations/alembic.ini revision --autogenerate -m "..."
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Final

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, inspect, text
from sqlalchemy.engine import Connection

from connectors.storage.db import Database, metadata

__all__ = ["MIGRATIONS_DIR", "TABLE_MODULES", "alembic_config", "load_tables", "migrate"]

MIGRATIONS_DIR: Final = Path(__file__).with_name("migrations")

#: Every module that defines tables on the shared metadata. A table module added later must be
#: listed here and get a migration (tests/storage/test_migrate.py fails until it has one).
TABLE_MODULES: Final = (
    "connectors.storage.credentials",
    "connectors.storage.audit",
    "connectors.storage.access",
    "connectors.jobs.tables",
    "connectors.adapters.webhook.tables",
    "connectors.adapters.email.watermark",
    "connectors.rotation.store",
)


def load_tables() -> MetaData:
    """Import every table module; return the shared metadata, now complete."""
    for name in TABLE_MODULES:
        importlib.import_module(name)
    return metadata


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for our migrations, optionally bound to an open connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def migrate(db: Database, revision: str = "head") -> None:
    """Upgrade ``db`` to ``revision`` (default: the newest), in one transaction where possible."""

    def upgrade(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), revision)

    async with db.engine.begin() as conn:
        await conn.run_sync(upgrade)


async def ensure_schema(db: Database) -> None:
    """Bring ``db`` to the newest revision, whatever made it.

    An empty or migrated database is upgraded. A database whose tables were made by
    :meth:`~connectors.storage.db.Database.create_all` before migrations existed (tables but no
    ``alembic_version``) gets its missing tables created and is stamped at head, so that later
    revisions apply to it normally. This is what the Hub runs at start.
    """

    def run(connection: Connection) -> None:
        if connection.dialect.name == "postgresql":
            # Processes starting together take turns; the lock ends with the transaction.
            connection.execute(text("SELECT pg_advisory_xact_lock(7201501)"))
        config = alembic_config(connection)
        present = set(inspect(connection).get_table_names())
        if "alembic_version" not in present and present & set(load_tables().tables):
            metadata.create_all(connection)
            command.stamp(config, "head")
        else:
            command.upgrade(config, "head")

    async with db.engine.begin() as conn:
        await conn.run_sync(run)


async def current_revision(db: Database) -> str | None:
    """The revision the database is at (``None`` for a database never migrated)."""
    from alembic.runtime.migration import MigrationContext

    def read(connection: Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with db.engine.connect() as conn:
        return await conn.run_sync(read)


__all__ += ["current_revision", "ensure_schema"]

"""A temporary SQLite database with every table created."""

from __future__ import annotations

from pathlib import Path

import connectors.adapters.webhook.tables
import connectors.jobs.tables
from connectors.storage.db import Database

_ = connectors.adapters.webhook.tables


async def make_db(tmp_path: Path, name: str = "jobs.db") -> Database:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / name}")
    await db.create_all()
    return db

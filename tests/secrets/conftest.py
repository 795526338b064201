"""Fixtures of the secrets tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def db_url(tmp_path) -> str:
    """A temporary SQLite database file."""
    return f"sqlite+aiosqlite:///{tmp_path}/t.db"

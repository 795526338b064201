"""The credential tables: one row per (tenant, name); timestamps come back as UTC."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy.exc import IntegrityError

from connectors.storage.credentials import CredentialRow, TenantKeyRow, as_utc

from ._support import open_db

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def _row(tenant: str, name: str) -> CredentialRow:
    return CredentialRow(
        tenant=tenant,
        name=name,
        version=1,
        key_generation=1,
        nonce=b"n" * 12,
        ciphertext=b"c",
        field_names=["value"],
        meta={},
        created_at=NOW,
        updated_at=NOW,
        updated_by="x",
        deleted=False,
    )


def test_one_credential_row_per_tenant_and_name(db_url):
    async def main():
        async with open_db(db_url) as db:
            async with db.session() as session:
                session.add_all([_row("a", "sf"), _row("b", "sf"), _row("a", "slack")])
            with pytest.raises(IntegrityError):
                async with db.session() as session:
                    session.add(_row("a", "sf"))

    asyncio.run(main())


def test_one_data_key_per_tenant_and_generation(db_url):
    async def main():
        async with open_db(db_url) as db:
            async with db.session() as session:
                session.add(
                    TenantKeyRow(
                        tenant="a", generation=1, kid="k1", wrapped_key=b"w", created_at=NOW
                    )
                )
            with pytest.raises(IntegrityError):
                async with db.session() as session:
                    session.add(
                        TenantKeyRow(
                            tenant="a", generation=1, kid="k2", wrapped_key=b"x", created_at=NOW
                        )
                    )

    asyncio.run(main())


def test_metadata_column_is_named_metadata_in_sql():
    assert "metadata" in CredentialRow.__table__.columns
    assert CredentialRow.__table__.c["metadata"].key == "metadata"


def test_as_utc_makes_naive_and_offset_timestamps_utc():
    naive = datetime(2025, 1, 1, 12, 0)
    assert as_utc(naive) == datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    plus_two = datetime(2025, 1, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    assert as_utc(plus_two).tzinfo is UTC
    assert as_utc(plus_two) == datetime(2025, 1, 1, 12, 0, tzinfo=UTC)

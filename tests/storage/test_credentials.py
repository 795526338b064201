"""The encrypted credential store on a real PostgreSQL: versions, compare-and-swap under
concurrency from two engines (two "processes"), the tenant data key race, and round trips.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC

import pytest

from connectors.clock import SystemClock
from connectors.errors import Conflict, CredentialMissing
from connectors.secrets.crypto import MasterKeyring
from connectors.secrets.secret import Secret
from connectors.secrets.store import CredentialStore
from connectors.storage.db import Database

pytestmark = pytest.mark.server

KEYS = MasterKeyring.parse(f"k1:{base64.b64encode(os.urandom(32)).decode()}")


@asynccontextmanager
async def stores(url: str, n: int = 2) -> AsyncIterator[list[CredentialStore]]:
    """``n`` stores, each on its own engine and connection pool, like separate processes."""
    dbs = [Database(url) for _ in range(n)]
    try:
        yield [CredentialStore(db, KEYS, clock=SystemClock(), cache_ttl=0) for db in dbs]
    finally:
        for db in dbs:
            await db.dispose()


def test_put_get_round_trips_fields_metadata_and_aware_timestamps(pg_url):
    async def main() -> None:
        async with stores(pg_url, 1) as (store,):
            version = await store.put(
                "acme",
                "crm",
                {"client_secret": Secret("s3cr3t"), "id": "cid"},
                metadata={"scopes": ["api"], "expires_at": 12.5, "nested": {"a": [1, None]}},
                actor="alice",
            )
            cred = await store.get("acme", "crm")
            assert version == cred.version == 1
            assert cred.fields["client_secret"].reveal() == "s3cr3t"
            assert cred.metadata == {
                "scopes": ["api"],
                "expires_at": 12.5,
                "nested": {"a": [1, None]},
            }
            assert cred.updated_at.tzinfo is not None
            assert cred.updated_at.utcoffset() == UTC.utcoffset(None)
            assert [c.name for c in await store.list("acme")] == ["crm"]
            await store.delete("acme", "crm", actor="alice")
            with pytest.raises(CredentialMissing):
                await store.get("acme", "crm", fresh=True)
            assert (
                await store.put("acme", "crm", {"v": "again"}, actor="alice", expected_version=0)
                == 3
            )

    asyncio.run(main())


def test_concurrent_compare_and_swap_from_two_engines_has_exactly_one_winner(pg_url):
    async def main() -> None:
        async with stores(pg_url) as (a, b):
            await a.put("t", "token", {"refresh_token": "r0"}, actor="x")

            async def refresh(store: CredentialStore, i: int) -> int | None:
                try:
                    return await store.put(
                        "t", "token", {"refresh_token": f"r{i}"}, actor="x", expected_version=1
                    )
                except Conflict:
                    return None

            results = await asyncio.gather(*(refresh(a if i % 2 else b, i) for i in range(1, 11)))
            assert [r for r in results if r is not None] == [2]
            assert (await b.get("t", "token", fresh=True)).version == 2

    asyncio.run(main())


def test_concurrent_unconditional_puts_from_two_engines_all_land(pg_url):
    async def main() -> None:
        async with stores(pg_url) as (a, b):
            await a.put("t", "a", {"v": "0"}, actor="x")
            versions = await asyncio.gather(
                *((a if i % 2 else b).put("t", "a", {"v": str(i)}, actor="x") for i in range(1, 7))
            )
            assert sorted(versions) == [2, 3, 4, 5, 6, 7]

    asyncio.run(main())


def test_two_engines_racing_to_create_a_tenant_data_key_share_one(pg_url):
    async def main() -> None:
        async with stores(pg_url) as (a, b):
            await asyncio.gather(
                a.put("newco", "one", {"v": "1"}, actor="x"),
                b.put("newco", "two", {"v": "2"}, actor="x"),
            )
            # Each store reads the other's credential: both used the same data key.
            assert (await a.get("newco", "two")).fields["v"].reveal() == "2"
            assert (await b.get("newco", "one")).fields["v"].reveal() == "1"

    asyncio.run(main())

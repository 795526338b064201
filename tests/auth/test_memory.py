"""In-memory TokenStore (versioned CAS) and LockProvider (TTL leases with fencing tokens)."""

from __future__ import annotations

import asyncio

import pytest

from connectors.auth import (
    InMemoryLockProvider,
    InMemoryTokenStore,
    LockProvider,
    TokenSet,
    TokenStore,
)
from connectors.clock import FakeClock
from connectors.errors import Conflict
from connectors.secrets import Secret


def tok(value: str) -> TokenSet:
    return TokenSet(access_token=Secret(value))


def test_in_memory_implementations_satisfy_the_protocols():
    assert isinstance(InMemoryTokenStore(), TokenStore)
    assert isinstance(InMemoryLockProvider(), LockProvider)


def test_store_save_is_compare_and_swap_on_the_version():
    async def main():
        store = InMemoryTokenStore()
        assert await store.load("t", "c") is None
        assert await store.save("t", "c", tok("one-x9"), expected_version=None) == 1
        with pytest.raises(Conflict):
            await store.save("t", "c", tok("two-x9"), expected_version=None)
        with pytest.raises(Conflict):
            await store.save("t", "c", tok("two-x9"), expected_version=7)
        assert await store.save("t", "c", tok("two-x9"), expected_version=1) == 2
        stored = await store.load("t", "c")
        assert stored is not None
        assert stored.version == 2
        assert stored.token.access_token.reveal() == "two-x9"

    asyncio.run(main())


def test_store_keys_are_per_tenant_and_a_save_clears_the_reauth_mark():
    async def main():
        store = InMemoryTokenStore()
        await store.save("a", "c", tok("a-token-x9"), expected_version=None)
        assert await store.load("b", "c") is None
        await store.mark_needs_reauth("a", "c", "invalid_grant")
        assert store.needs_reauth("a", "c") == "invalid_grant"
        assert store.needs_reauth("b", "c") is None
        await store.save("a", "c", tok("a-new-x9"), expected_version=1)
        assert store.needs_reauth("a", "c") is None

    asyncio.run(main())


def test_lock_lease_excludes_others_until_released_or_expired_with_increasing_fences():
    async def main():
        clock = FakeClock()
        locks = InMemoryLockProvider(clock=clock)
        first = await locks.acquire("k", owner="p1", ttl=10)
        assert first is not None
        assert await locks.acquire("k", owner="p2", ttl=10) is None
        assert locks.holder("k") == "p1"
        renewed = await locks.acquire("k", owner="p1", ttl=10)  # same owner renews
        assert renewed is not None
        assert renewed > first
        clock.advance(10)
        taken = await locks.acquire("k", owner="p2", ttl=10)
        assert taken is not None
        assert taken > renewed
        assert not await locks.release("k", owner="p1")  # p1's lease is gone
        assert await locks.release("k", owner="p2")
        assert locks.holder("k") is None
        assert await locks.acquire("other", owner="p1", ttl=1) is not None

    asyncio.run(main())


def test_lock_release_after_expiry_reports_false_and_ttl_must_be_positive():
    async def main():
        clock = FakeClock()
        locks = InMemoryLockProvider(clock=clock)
        await locks.acquire("k", owner="p1", ttl=5)
        clock.advance(6)
        assert not await locks.release("k", owner="p1")
        with pytest.raises(ValueError, match="ttl"):
            await locks.acquire("k", owner="p1", ttl=0)

    asyncio.run(main())

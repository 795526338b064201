"""The warm path of AccessPolicy.check: one cache lookup, never stale, never cross-tenant."""

from __future__ import annotations

import asyncio

import pytest

from connectors.access.policy import AccessPolicy
from connectors.access.roles import Permission, Role
from connectors.clock import FakeClock
from connectors.errors import AccessDenied

from ._support import StatementCounter, database


def test_a_warm_check_asks_the_database_nothing(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            policy = AccessPolicy(db, clock=FakeClock())
            await policy.grant("alice", "acme", Role.EDITOR)
            await policy.check("alice", "acme", "operation.run")
            counter = StatementCounter(db)
            for _ in range(5):
                await policy.check("alice", "acme", "operation.run")
                await policy.check("alice", "acme", Permission.HEALTH_READ)
            assert counter.count == 0

    asyncio.run(main())


def test_a_role_cached_in_one_tenant_allows_nothing_in_another(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            policy = AccessPolicy(db, clock=FakeClock())
            await policy.grant("alice", "tenant-a", Role.ADMIN)
            await policy.check("alice", "tenant-a", "operation.run")
            with pytest.raises(AccessDenied):
                await policy.check("alice", "tenant-b", "operation.run")
            # and the other way round, with both cached now
            await policy.check("alice", "tenant-a", "operation.run")
            with pytest.raises(AccessDenied):
                await policy.check("alice", "tenant-b", "operation.run")

    asyncio.run(main())


def test_a_cached_role_never_grants_more_than_it_holds(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            policy = AccessPolicy(db, clock=FakeClock())
            await policy.grant("vera", "acme", Role.VIEWER)
            await policy.check("vera", "acme", "health.read")
            with pytest.raises(AccessDenied):
                await policy.check("vera", "acme", "operation.run")

    asyncio.run(main())


def test_a_revocation_through_the_policy_takes_effect_on_the_next_check(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            policy = AccessPolicy(db, clock=FakeClock())
            await policy.grant("alice", "acme", Role.EDITOR)
            await policy.check("alice", "acme", "operation.run")
            await policy.revoke("alice", "acme")
            with pytest.raises(AccessDenied):
                await policy.check("alice", "acme", "operation.run")

    asyncio.run(main())


def test_a_change_made_elsewhere_is_seen_once_the_cache_entry_expires(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            clock = FakeClock()
            reader = AccessPolicy(db, clock=clock, cache_ttl=5.0)
            writer = AccessPolicy(db, clock=clock)  # another process, in effect
            await writer.grant("alice", "acme", Role.EDITOR)
            await reader.check("alice", "acme", "operation.run")
            await writer.revoke("alice", "acme")
            await reader.check("alice", "acme", "operation.run")  # within the TTL: cached
            clock.advance(5.0)
            with pytest.raises(AccessDenied):
                await reader.check("alice", "acme", "operation.run")

    asyncio.run(main())


def test_an_unknown_permission_is_refused_even_with_a_warm_cache(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            policy = AccessPolicy(db, clock=FakeClock())
            await policy.grant("alice", "acme", Role.ADMIN)
            await policy.check("alice", "acme", "operation.run")
            with pytest.raises(ValueError, match="unknown permission"):
                await policy.check("alice", "acme", "operation.fly")

    asyncio.run(main())

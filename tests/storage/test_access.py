"""Access policy and API tokens on a real PostgreSQL: grants, teams (cascading membership),
permission checks and token verification, through their public APIs.
"""

from __future__ import annotations

import asyncio

import pytest

from connectors.access.policy import AccessPolicy
from connectors.access.roles import Permission, Role
from connectors.access.tokens import ApiTokens
from connectors.clock import FakeClock
from connectors.errors import AccessDenied, AuthenticationFailed
from connectors.storage.db import Database

pytestmark = pytest.mark.server


def test_grants_teams_and_checks(pg_url):
    async def main() -> None:
        db = Database(pg_url)
        try:
            policy = AccessPolicy(db, clock=FakeClock(), cache_ttl=0)
            await policy.grant("alice", "acme", Role.EDITOR, by="root")
            await policy.check("alice", "acme", Permission.OPERATION_RUN)
            with pytest.raises(AccessDenied):
                await policy.check("alice", "acme", Permission.ACCESS_MANAGE)
            with pytest.raises(AccessDenied):
                await policy.check("alice", "globex", Permission.HEALTH_READ)
            await policy.create_team("acme", "ops", Role.ADMIN, by="root")
            await policy.add_member("acme", "ops", "bob")
            await policy.add_member("acme", "ops", "bob")  # idempotent
            assert await policy.role_of("bob", "acme") is Role.ADMIN
            assert [t.name for t in await policy.teams("acme")] == ["ops"]
            assert await policy.delete_team("acme", "ops")
            assert await policy.role_of("bob", "acme") is None  # membership went with the team
            assert [g.actor for g in await policy.grants("acme")] == ["alice"]
            assert await policy.revoke("alice", "acme")
            assert await policy.role_of("alice", "acme") is None
        finally:
            await db.dispose()

    asyncio.run(main())


def test_api_tokens_create_verify_list_and_revoke(pg_url):
    async def main() -> None:
        db = Database(pg_url)
        try:
            tokens = ApiTokens(db, clock=FakeClock(), cache_ttl=0)
            secret, info = await tokens.create("acme", Role.VIEWER, name="ci", created_by="root")
            verified = await tokens.verify(secret)
            assert (verified.id, verified.tenant, verified.role) == (info.id, "acme", Role.VIEWER)
            assert [t.id for t in await tokens.list("acme")] == [info.id]
            assert await tokens.list("globex") == []
            assert not await tokens.revoke(info.id, tenant="globex")
            assert await tokens.revoke(info.id, tenant="acme")
            with pytest.raises(AuthenticationFailed):
                await tokens.verify(secret)
        finally:
            await db.dispose()

    asyncio.run(main())

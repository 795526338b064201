"""The access policy: the matrix enforced per tenant, teams, service identity, caching."""

from __future__ import annotations

import asyncio

import pytest

from connectors.access.policy import AccessPolicy, Denial
from connectors.access.roles import MATRIX, Permission, Role
from connectors.clock import FakeClock
from connectors.errors import AccessDenied, Conflict, InvalidRequest, NotFound

from ._support import StatementCounter, database


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(Permission))
def test_each_role_is_allowed_exactly_what_the_matrix_says(tmp_path, role, permission):
    async def main():
        async with database(tmp_path) as db:
            policy = AccessPolicy(db, clock=FakeClock())
            await policy.grant("alice", "acme", role)
            if permission in MATRIX[role]:
                await policy.check("alice", "acme", permission)
            else:
                with pytest.raises(AccessDenied):
                    await policy.check("alice", "acme", permission)
            assert await policy.allowed("alice", "acme", permission) == (permission in MATRIX[role])

    asyncio.run(main())


def test_a_denial_names_actor_tenant_permission_and_the_role_needed(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            policy = AccessPolicy(db, clock=FakeClock())
            await policy.grant("bob", "acme", Role.VIEWER)
            with pytest.raises(AccessDenied) as info:
                await policy.check("bob", "acme", Permission.CREDENTIAL_WRITE)
            message = str(info.value)
            for part in ("'bob'", "'acme'", "credential.write", "'viewer'", "'admin'"):
                assert part in message
            assert info.value.tenant == "acme"
            assert info.value.permission == "credential.write"

    asyncio.run(main())


def test_an_actor_without_any_role_is_denied_everything(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            policy = AccessPolicy(db, clock=FakeClock())
            assert await policy.role_of("stranger", "acme") is None
            with pytest.raises(AccessDenied, match="no role"):
                await policy.check("stranger", "acme", "health.read")

    asyncio.run(main())


def test_a_role_in_one_tenant_gives_nothing_in_another(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            policy = AccessPolicy(db, clock=FakeClock())
            await policy.grant("alice", "tenant-a", Role.ADMIN)
            await policy.create_team("tenant-a", "ops", Role.ADMIN)
            await policy.add_member("tenant-a", "ops", "carol")
            await policy.create_team("tenant-b", "ops", Role.VIEWER)
            for actor in ("alice", "carol"):
                assert await policy.role_of(actor, "tenant-a") is Role.ADMIN
                assert await policy.role_of(actor, "tenant-b") is None
                with pytest.raises(AccessDenied):
                    await policy.check(actor, "tenant-b", Permission.HEALTH_READ)

    asyncio.run(main())


def test_team_roles_combine_with_direct_grants_taking_the_highest(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            policy = AccessPolicy(db, clock=FakeClock())
            await policy.grant("dan", "acme", Role.VIEWER)
            await policy.create_team("acme", "builders", Role.EDITOR)
            await policy.create_team("acme", "owners", Role.ADMIN)
            await policy.add_member("acme", "builders", "dan")
            assert await policy.role_of("dan", "acme") is Role.EDITOR
            await policy.check("dan", "acme", Permission.OPERATION_RUN)
            await policy.add_member("acme", "owners", "dan")
            assert await policy.role_of("dan", "acme") is Role.ADMIN
            assert await policy.remove_member("acme", "owners", "dan")
            assert await policy.role_of("dan", "acme") is Role.EDITOR
            assert await policy.delete_team("acme", "builders")
            assert await policy.role_of("dan", "acme") is Role.VIEWER
            assert await policy.revoke("dan", "acme")
            assert await policy.role_of("dan", "acme") is None

    asyncio.run(main())


def test_teams_and_grants_can_be_listed(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            policy = AccessPolicy(db, clock=FakeClock())
            await policy.grant("zed", "acme", "editor", by="root")
            await policy.grant("amy", "acme", "viewer")
            await policy.create_team("acme", "ops", "admin")
            await policy.add_member("acme", "ops", "bo")
            await policy.add_member("acme", "ops", "al")
            await policy.add_member("acme", "ops", "al")  # idempotent
            grants = await policy.grants("acme")
            assert [(g.actor, g.role) for g in grants] == [
                ("amy", Role.VIEWER),
                ("zed", Role.EDITOR),
            ]
            assert grants[1].granted_by == "root"
            [team] = await policy.teams("acme")
            assert (team.name, team.role, team.members) == ("ops", Role.ADMIN, ("al", "bo"))
            assert await policy.teams("other") == []

    asyncio.run(main())


def test_the_service_actor_is_admin_everywhere_unless_told_otherwise(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            trusted = AccessPolicy(db, clock=FakeClock())
            for permission in Permission:
                await trusted.check("service", "any-tenant", permission)
            assert await trusted.role_of("service", "x") is Role.ADMIN
            custom = AccessPolicy(db, clock=FakeClock(), service_actor="worker-7")
            await custom.check("worker-7", "acme", Permission.CREDENTIAL_WRITE)
            with pytest.raises(AccessDenied):
                await custom.check("service", "acme", Permission.HEALTH_READ)
            strict = AccessPolicy(db, clock=FakeClock(), trust_service_actor=False)
            with pytest.raises(AccessDenied):
                await strict.check("service", "acme", Permission.HEALTH_READ)

    asyncio.run(main())


def test_a_warm_check_does_not_touch_the_database(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            policy = AccessPolicy(db, clock=FakeClock())
            await policy.grant("alice", "acme", Role.EDITOR)
            counter = StatementCounter(db)
            await policy.check("alice", "acme", Permission.OPERATION_RUN)
            cold = counter.count
            assert cold > 0
            for _ in range(100):
                await policy.check("alice", "acme", Permission.OPERATION_RUN)
            assert counter.count == cold

    asyncio.run(main())


def test_a_change_in_this_process_takes_effect_at_once(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            policy = AccessPolicy(db, clock=FakeClock())
            with pytest.raises(AccessDenied):
                await policy.check("erin", "acme", Permission.OPERATION_RUN)  # caches "no role"
            await policy.grant("erin", "acme", Role.EDITOR)
            await policy.check("erin", "acme", Permission.OPERATION_RUN)
            await policy.revoke("erin", "acme")
            with pytest.raises(AccessDenied):
                await policy.check("erin", "acme", Permission.OPERATION_RUN)

    asyncio.run(main())


def test_a_change_in_another_process_is_seen_within_the_cache_ttl(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            clock = FakeClock()
            here = AccessPolicy(db, clock=clock, cache_ttl=5.0)
            elsewhere = AccessPolicy(db, clock=clock)
            await elsewhere.grant("fay", "acme", Role.ADMIN)
            await here.check("fay", "acme", Permission.CREDENTIAL_WRITE)
            await elsewhere.revoke("fay", "acme")
            await here.check("fay", "acme", Permission.CREDENTIAL_WRITE)  # still cached
            clock.advance(5.01)
            with pytest.raises(AccessDenied):
                await here.check("fay", "acme", Permission.CREDENTIAL_WRITE)

    asyncio.run(main())


def test_every_denial_is_reported_before_raising(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            denials: list[Denial] = []

            async def on_denied(denial: Denial) -> None:
                denials.append(denial)

            policy = AccessPolicy(db, clock=FakeClock(), on_denied=on_denied)
            await policy.grant("gus", "acme", Role.VIEWER)
            await policy.check("gus", "acme", Permission.AUDIT_READ)
            with pytest.raises(AccessDenied):
                await policy.check("gus", "acme", Permission.CIRCUIT_RESET)
            assert denials == [
                Denial("gus", "acme", Permission.CIRCUIT_RESET, Role.VIEWER, Role.ADMIN)
            ]

    asyncio.run(main())


def test_a_failing_denial_callback_still_denies(tmp_path):
    async def main():
        async with database(tmp_path) as db:

            async def broken(denial: Denial) -> None:
                raise RuntimeError("audit down")

            policy = AccessPolicy(db, clock=FakeClock(), on_denied=broken)
            with pytest.raises(AccessDenied) as info:
                await policy.check("hal", "acme", Permission.HEALTH_READ)
            assert isinstance(info.value.__cause__, RuntimeError)

    asyncio.run(main())


def test_changes_are_reported(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            changes = []

            async def on_change(change) -> None:
                changes.append((change.action, change.subject, change.by))

            policy = AccessPolicy(db, clock=FakeClock(), on_change=on_change)
            await policy.grant("ivy", "acme", Role.EDITOR, by="root")
            await policy.create_team("acme", "ops", Role.VIEWER, by="root")
            await policy.add_member("acme", "ops", "ivy", by="root")
            assert changes == [
                ("grant", "ivy", "root"),
                ("team.create", "ops", "root"),
                ("team.add_member", "ops", "root"),
            ]

    asyncio.run(main())


def test_bad_input_gets_typed_errors(tmp_path):
    async def main():
        async with database(tmp_path) as db:
            policy = AccessPolicy(db, clock=FakeClock())
            with pytest.raises(InvalidRequest, match="team name"):
                await policy.create_team("acme", "bad name!", Role.VIEWER)
            with pytest.raises(InvalidRequest, match="actor"):
                await policy.grant("", "acme", Role.VIEWER)
            with pytest.raises(ValueError, match="unknown role"):
                await policy.grant("jo", "acme", "owner")
            with pytest.raises(ValueError, match="unknown permission"):
                await policy.check("jo", "acme", "do.anything")
            with pytest.raises(NotFound, match="no team"):
                await policy.add_member("acme", "ghosts", "jo")
            await policy.create_team("acme", "ops", Role.VIEWER)
            with pytest.raises(Conflict, match="already exists"):
                await policy.create_team("acme", "ops", Role.ADMIN)

    asyncio.run(main())

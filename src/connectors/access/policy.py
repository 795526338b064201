"""The access policy: who holds which role in which tenant, and the check on every call.

An actor's effective role in a tenant is the highest of its direct grant and the roles of the
teams it belongs to *in that tenant*; a role in tenant A gives nothing in tenant B. The
process's own service identity (``service_actor``) is admin everywhere unless
``trust_service_actor=False``.

:meth:`AccessPolicy.check` is on the hot path of every operation, so effective roles are cached
per ``(tenant, actor)``: a warm check costs about a microsecond. Any change made through this
policy clears the cache at once; changes made by another process are seen after at most
``cache_ttl`` seconds.

Every denial is reported to the optional ``on_denied`` callback (the Hub connects it to the audit
writer) before :class:`~connectors.errors.AccessDenied` is raised; every change to grants and
teams is reported to ``on_change``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final, Literal

from sqlalchemy import and_, delete, select

from connectors.access.roles import MATRIX, Permission, Role, highest, minimum_role
from connectors.clock import Clock, system_clock
from connectors.context import DEFAULT_ACTOR
from connectors.errors import AccessDenied, Conflict, InvalidRequest, NotFound
from connectors.storage.access import RoleGrantRow, TeamMemberRow, TeamRow
from connectors.storage.db import Database

__all__ = ["AccessChange", "AccessPolicy", "Denial", "Grant", "TeamInfo"]

_MAX_NAME = 200
_TEAM_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_CACHE_MAX = 50_000

ChangeAction = Literal[
    "grant", "revoke", "team.create", "team.delete", "team.add_member", "team.remove_member"
]


@dataclass(frozen=True, slots=True)
class Denial:
    """A refused check: what the ``on_denied`` callback receives (no secret in it)."""

    actor: str
    tenant: str
    permission: Permission
    role: Role | None
    needed: Role


@dataclass(frozen=True, slots=True)
class AccessChange:
    """A change to grants or teams: what the ``on_change`` callback receives."""

    tenant: str
    action: ChangeAction
    subject: str  # the actor granted/revoked, or the team
    by: str | None
    role: Role | None = None
    member: str | None = None


@dataclass(frozen=True, slots=True)
class Grant:
    """A role granted directly to an actor."""

    tenant: str
    actor: str
    role: Role
    granted_by: str | None
    granted_at: float


@dataclass(frozen=True, slots=True)
class TeamInfo:
    """A team, its role and its members."""

    tenant: str
    name: str
    role: Role
    members: tuple[str, ...]


def _check_name(kind: str, value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"{kind} must be a non-empty string")
    if len(value) > _MAX_NAME:
        raise InvalidRequest(f"{kind} is longer than {_MAX_NAME} characters")


def _check_team(name: str) -> None:
    if not isinstance(name, str) or not _TEAM_RE.fullmatch(name):
        raise InvalidRequest(
            f"invalid team name {name!r}: use letters, digits, '_', '.', '-' (at most 100)"
        )


class AccessPolicy:
    """Role grants and teams per tenant, with a cached permission check."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock = system_clock,
        cache_ttl: float = 5.0,
        service_actor: str = DEFAULT_ACTOR,
        trust_service_actor: bool = True,
        on_denied: Callable[[Denial], Awaitable[None]] | None = None,
        on_change: Callable[[AccessChange], Awaitable[None]] | None = None,
    ) -> None:
        if cache_ttl < 0:
            raise ValueError("cache_ttl must be >= 0")
        self._db = db
        self._clock = clock
        self._ttl = cache_ttl
        self.service_actor = service_actor
        self.trust_service_actor = trust_service_actor
        self.on_denied = on_denied
        self.on_change = on_change
        self._cache: dict[tuple[str, str], tuple[Role | None, float]] = {}
        self._generation = 0

    # -- checks -------------------------------------------------------------------------------

    async def check(self, actor: str, tenant: str, permission: Permission | str) -> None:
        """Return if ``actor`` may do ``permission`` in ``tenant``; else report and raise.

        Raises :class:`~connectors.errors.AccessDenied` naming the actor, tenant, permission,
        the actor's role and the role that would be needed.
        """
        # Warm path: one dict lookup. A permission string compares equal to its Permission
        # member, so an unknown one misses here and is parsed (and refused) below.
        hit = self._cache.get((tenant, actor))
        if (
            hit is not None
            and hit[0] is not None
            and isinstance(permission, str)
            and permission in MATRIX[hit[0]]
            and hit[1] > self._clock.monotonic()
        ):
            return
        if not isinstance(permission, Permission):
            permission = Permission.parse(permission)
        if self.trust_service_actor and actor == self.service_actor:
            return
        role = await self.role_of(actor, tenant)
        if role is not None and permission in MATRIX[role]:
            return
        await self._deny(actor, tenant, permission, role)

    async def allowed(self, actor: str, tenant: str, permission: Permission | str) -> bool:
        """Whether the check would pass (nothing is reported; for UIs hiding buttons)."""
        if not isinstance(permission, Permission):
            permission = Permission.parse(permission)
        role = await self.role_of(actor, tenant)
        return role is not None and permission in MATRIX[role]

    async def role_of(self, actor: str, tenant: str) -> Role | None:
        """The actor's effective role in the tenant (``None``: no access at all)."""
        if self.trust_service_actor and actor == self.service_actor:
            return Role.ADMIN
        key = (tenant, actor)
        hit = self._cache.get(key)
        if hit is not None and hit[1] > self._clock.monotonic():
            return hit[0]
        generation = self._generation
        role = await self._load(actor, tenant)
        if generation == self._generation:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[key] = (role, self._clock.monotonic() + self._ttl)
        return role

    async def _load(self, actor: str, tenant: str) -> Role | None:
        team_roles = (
            select(TeamRow.role)
            .join(
                TeamMemberRow,
                and_(TeamMemberRow.tenant == TeamRow.tenant, TeamMemberRow.team == TeamRow.name),
            )
            .where(TeamMemberRow.tenant == tenant, TeamMemberRow.actor == actor)
        )
        async with self._db.session() as session:
            direct = await session.scalar(
                select(RoleGrantRow.role).where(
                    RoleGrantRow.tenant == tenant, RoleGrantRow.actor == actor
                )
            )
            teams = list((await session.execute(team_roles)).scalars())
        roles = [Role(r) for r in teams]
        if direct is not None:
            roles.append(Role(direct))
        return highest(roles)

    async def _deny(
        self, actor: str, tenant: str, permission: Permission, role: Role | None
    ) -> None:
        needed = minimum_role(permission)
        held = f"role {role.value!r}" if role is not None else "no role"
        error = AccessDenied(
            f"actor {actor!r} may not {permission.value} in tenant {tenant!r}: "
            f"they have {held} there and it needs {needed.value!r} or higher",
            tenant=tenant,
            hint=f"ask an admin of tenant {tenant!r} to grant {actor!r} the {needed.value} role",
            actor=actor,
            permission=permission.value,
            needed_role=needed.value,
        )
        if self.on_denied is not None:
            try:
                await self.on_denied(Denial(actor, tenant, permission, role, needed))
            except Exception as exc:
                raise error from exc
        raise error

    def invalidate(self) -> None:
        """Forget every cached role (called on each change made through this policy)."""
        self._generation += 1
        self._cache.clear()

    async def _changed(self, change: AccessChange) -> None:
        self.invalidate()
        if self.on_change is not None:
            await self.on_change(change)

    # -- direct grants ------------------------------------------------------------------------

    async def grant(
        self, actor: str, tenant: str, role: Role | str, *, by: str | None = None
    ) -> None:
        """Give ``actor`` ``role`` in ``tenant`` (replacing a previous direct grant)."""
        _check_name("actor", actor)
        _check_name("tenant", tenant)
        role = Role.parse(role)
        now = self._clock.time()
        async with self._db.session() as session:
            row = await session.get(RoleGrantRow, (tenant, actor))
            if row is None:
                session.add(
                    RoleGrantRow(
                        tenant=tenant, actor=actor, role=role.value, granted_by=by, granted_at=now
                    )
                )
            else:
                row.role, row.granted_by, row.granted_at = role.value, by, now
        await self._changed(AccessChange(tenant, "grant", actor, by, role=role))

    async def revoke(self, actor: str, tenant: str, *, by: str | None = None) -> bool:
        """Remove ``actor``'s direct grant in ``tenant`` (team roles stay). Whether one existed."""
        async with self._db.session() as session:
            result = await session.execute(
                delete(RoleGrantRow).where(
                    RoleGrantRow.tenant == tenant, RoleGrantRow.actor == actor
                )
            )
        removed = bool(getattr(result, "rowcount", 0))
        await self._changed(AccessChange(tenant, "revoke", actor, by))
        return removed

    async def grants(self, tenant: str) -> list[Grant]:
        """The direct grants of a tenant, by actor."""
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(RoleGrantRow)
                    .where(RoleGrantRow.tenant == tenant)
                    .order_by(RoleGrantRow.actor)
                )
            ).scalars()
            return [
                Grant(r.tenant, r.actor, Role(r.role), r.granted_by, r.granted_at) for r in rows
            ]

    # -- teams --------------------------------------------------------------------------------

    async def create_team(
        self, tenant: str, name: str, role: Role | str, *, by: str | None = None
    ) -> TeamInfo:
        """Create a team whose members all hold at least ``role`` in ``tenant``."""
        _check_name("tenant", tenant)
        _check_team(name)
        role = Role.parse(role)
        async with self._db.session() as session:
            if await session.get(TeamRow, (tenant, name)) is not None:
                raise Conflict(f"team {name!r} already exists in tenant {tenant!r}", tenant=tenant)
            session.add(
                TeamRow(
                    tenant=tenant,
                    name=name,
                    role=role.value,
                    created_by=by,
                    created_at=self._clock.time(),
                )
            )
        await self._changed(AccessChange(tenant, "team.create", name, by, role=role))
        return TeamInfo(tenant, name, role, ())

    async def delete_team(self, tenant: str, name: str, *, by: str | None = None) -> bool:
        """Delete a team and its memberships. Whether it existed."""
        async with self._db.session() as session:
            await session.execute(
                delete(TeamMemberRow).where(
                    TeamMemberRow.tenant == tenant, TeamMemberRow.team == name
                )
            )
            result = await session.execute(
                delete(TeamRow).where(TeamRow.tenant == tenant, TeamRow.name == name)
            )
        await self._changed(AccessChange(tenant, "team.delete", name, by))
        return bool(getattr(result, "rowcount", 0))

    async def add_member(
        self, tenant: str, team: str, actor: str, *, by: str | None = None
    ) -> None:
        """Add ``actor`` to ``team`` (idempotent)."""
        _check_name("actor", actor)
        async with self._db.session() as session:
            if await session.get(TeamRow, (tenant, team)) is None:
                raise NotFound(f"no team {team!r} in tenant {tenant!r}", tenant=tenant)
            if await session.get(TeamMemberRow, (tenant, team, actor)) is None:
                session.add(
                    TeamMemberRow(
                        tenant=tenant, team=team, actor=actor, added_at=self._clock.time()
                    )
                )
        await self._changed(AccessChange(tenant, "team.add_member", team, by, member=actor))

    async def remove_member(
        self, tenant: str, team: str, actor: str, *, by: str | None = None
    ) -> bool:
        """Remove ``actor`` from ``team``. Whether it was a member."""
        async with self._db.session() as session:
            result = await session.execute(
                delete(TeamMemberRow).where(
                    TeamMemberRow.tenant == tenant,
                    TeamMemberRow.team == team,
                    TeamMemberRow.actor == actor,
                )
            )
        await self._changed(AccessChange(tenant, "team.remove_member", team, by, member=actor))
        return bool(getattr(result, "rowcount", 0))

    async def teams(self, tenant: str) -> list[TeamInfo]:
        """The teams of a tenant with their members, by name."""
        async with self._db.session() as session:
            teams = list(
                (
                    await session.execute(
                        select(TeamRow).where(TeamRow.tenant == tenant).order_by(TeamRow.name)
                    )
                ).scalars()
            )
            members = (
                await session.execute(
                    select(TeamMemberRow.team, TeamMemberRow.actor)
                    .where(TeamMemberRow.tenant == tenant)
                    .order_by(TeamMemberRow.actor)
                )
            ).all()
        by_team: dict[str, list[str]] = {}
        for team, actor in members:
            by_team.setdefault(team, []).append(actor)
        return [
            TeamInfo(tenant, t.name, Role(t.role), tuple(by_team.get(t.name, ()))) for t in teams
        ]

"""``connectors access`` and ``connectors teams``: roles per tenant, and teams of actors."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.table import Table

from connectors.access.policy import AccessPolicy
from connectors.access.roles import Permission, Role
from connectors.cli._common import ACTOR_OPTION, TENANT_OPTION, actor_or_default, console, with_hub
from connectors.hub import Hub

app = typer.Typer(help="Grant and revoke roles in a tenant.")
teams_app = typer.Typer(help="Teams: named groups of actors with a role in a tenant.")

T = TypeVar("T")


def _as_manager(
    actor: str | None, tenant: str, action: Callable[[AccessPolicy, str], Awaitable[T]]
) -> T:
    """Run ``action(policy, acting identity)`` once the identity may manage access in
    ``tenant`` (a denial is audited and raised)."""
    by = actor_or_default(actor)

    async def main(hub: Hub) -> T:
        await hub.services.access.check(by, tenant, Permission.ACCESS_MANAGE)
        return await action(hub.services.access, by)

    return with_hub(main)


@app.command("grant")
def grant(
    who: str = typer.Argument(..., help="The actor receiving the role."),
    tenant: str = TENANT_OPTION,
    role: Role = typer.Option(..., "--role"),
    actor: str | None = ACTOR_OPTION,
) -> None:
    """Give an actor a role in a tenant (replacing a previous direct grant)."""

    async def main(policy: AccessPolicy, by: str) -> None:
        await policy.grant(who, tenant, role, by=by)

    _as_manager(actor, tenant, main)
    console.print(f"{who} is now {role.value} in {tenant}")


@app.command("revoke")
def revoke(
    who: str = typer.Argument(...),
    tenant: str = TENANT_OPTION,
    actor: str | None = ACTOR_OPTION,
) -> None:
    """Remove an actor's direct role in a tenant (team roles stay)."""

    async def main(policy: AccessPolicy, by: str) -> bool:
        return await policy.revoke(who, tenant, by=by)

    done = _as_manager(actor, tenant, main)
    console.print(f"revoked {who} in {tenant}" if done else f"{who} had no direct role")


@app.command("list")
def list_grants(tenant: str = TENANT_OPTION, actor: str | None = ACTOR_OPTION) -> None:
    """Direct role grants in a tenant."""

    async def main(policy: AccessPolicy, by: str) -> list[tuple[str, str]]:
        return [(g.actor, g.role.value) for g in await policy.grants(tenant)]

    table = Table(title=f"Roles in {tenant}")
    table.add_column("actor")
    table.add_column("role")
    for row in _as_manager(actor, tenant, main):
        table.add_row(*row)
    console.print(table)


@teams_app.command("create")
def team_create(
    name: str = typer.Argument(...),
    tenant: str = TENANT_OPTION,
    role: Role = typer.Option(..., "--role"),
    actor: str | None = ACTOR_OPTION,
) -> None:
    """Create a team with a role."""

    async def main(policy: AccessPolicy, by: str) -> None:
        await policy.create_team(tenant, name, role, by=by)

    _as_manager(actor, tenant, main)
    console.print(f"team {name} ({role.value}) created in {tenant}")


@teams_app.command("add")
def team_add(
    name: str = typer.Argument(...),
    member: str = typer.Argument(...),
    tenant: str = TENANT_OPTION,
    actor: str | None = ACTOR_OPTION,
) -> None:
    """Add an actor to a team."""

    async def main(policy: AccessPolicy, by: str) -> None:
        await policy.add_member(tenant, name, member, by=by)

    _as_manager(actor, tenant, main)
    console.print(f"{member} added to {name}")


@teams_app.command("remove")
def team_remove(
    name: str = typer.Argument(...),
    member: str = typer.Argument(...),
    tenant: str = TENANT_OPTION,
    actor: str | None = ACTOR_OPTION,
) -> None:
    """Remove an actor from a team."""

    async def main(policy: AccessPolicy, by: str) -> None:
        await policy.remove_member(tenant, name, member, by=by)

    _as_manager(actor, tenant, main)
    console.print(f"{member} removed from {name}")


@teams_app.command("delete")
def team_delete(
    name: str = typer.Argument(...), tenant: str = TENANT_OPTION, actor: str | None = ACTOR_OPTION
) -> None:
    """Delete a team (its members lose the team's role)."""

    async def main(policy: AccessPolicy, by: str) -> bool:
        return await policy.delete_team(tenant, name, by=by)

    _as_manager(actor, tenant, main)
    console.print(f"team {name} deleted")


@teams_app.command("list")
def team_list(tenant: str = TENANT_OPTION, actor: str | None = ACTOR_OPTION) -> None:
    """Teams of a tenant with their roles and members."""

    async def main(policy: AccessPolicy, by: str) -> list[tuple[str, str, str]]:
        return [(t.name, t.role.value, ", ".join(t.members)) for t in await policy.teams(tenant)]

    table = Table(title=f"Teams of {tenant}")
    for col in ("team", "role", "members"):
        table.add_column(col)
    for row in _as_manager(actor, tenant, main):
        table.add_row(*row)
    console.print(table)

"""``connectors access`` and ``connectors teams``: roles per tenant, and teams of actors."""

from __future__ import annotations

import typer
from rich.table import Table

from connectors.access.roles import Permission, Role
from connectors.cli._common import ACTOR_OPTION, TENANT_OPTION, actor_or_default, console, with_hub
from connectors.hub import Hub

app = typer.Typer(help="Grant and revoke roles in a tenant.")
teams_app = typer.Typer(help="Teams: named groups of actors with a role in a tenant.")


@app.command("grant")
def grant(
    who: str = typer.Argument(..., help="The actor receiving the role."),
    tenant: str = TENANT_OPTION,
    role: Role = typer.Option(..., "--role"),
    actor: str | None = ACTOR_OPTION,
) -> None:
    """Give an actor a role in a tenant (replacing a previous direct grant)."""
    by = actor_or_default(actor)

    async def main(hub: Hub) -> None:
        await hub.services.access.check(by, tenant, Permission.ACCESS_MANAGE)
        await hub.services.access.grant(who, tenant, role, by=by)

    with_hub(main)
    console.print(f"{who} is now {role.value} in {tenant}")


@app.command("revoke")
def revoke(
    who: str = typer.Argument(...),
    tenant: str = TENANT_OPTION,
    actor: str | None = ACTOR_OPTION,
) -> None:
    """Remove an actor's direct role in a tenant (team roles stay)."""
    by = actor_or_default(actor)

    async def main(hub: Hub) -> bool:
        await hub.services.access.check(by, tenant, Permission.ACCESS_MANAGE)
        return await hub.services.access.revoke(who, tenant, by=by)

    done = with_hub(main)
    console.print(f"revoked {who} in {tenant}" if done else f"{who} had no direct role")


@app.command("list")
def list_grants(tenant: str = TENANT_OPTION, actor: str | None = ACTOR_OPTION) -> None:
    """Direct role grants in a tenant."""
    by = actor_or_default(actor)

    async def main(hub: Hub) -> list[tuple[str, str]]:
        await hub.services.access.check(by, tenant, Permission.ACCESS_MANAGE)
        return [(g.actor, g.role.value) for g in await hub.services.access.grants(tenant)]

    table = Table(title=f"Roles in {tenant}")
    table.add_column("actor")
    table.add_column("role")
    for row in with_hub(main):
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
    by = actor_or_default(actor)

    async def main(hub: Hub) -> None:
        await hub.services.access.check(by, tenant, Permission.ACCESS_MANAGE)
        await hub.services.access.create_team(tenant, name, role, by=by)

    with_hub(main)
    console.print(f"team {name} ({role.value}) created in {tenant}")


@teams_app.command("add")
def team_add(
    name: str = typer.Argument(...),
    member: str = typer.Argument(...),
    tenant: str = TENANT_OPTION,
    actor: str | None = ACTOR_OPTION,
) -> None:
    """Add an actor to a team."""
    by = actor_or_default(actor)

    async def main(hub: Hub) -> None:
        await hub.services.access.check(by, tenant, Permission.ACCESS_MANAGE)
        await hub.services.access.add_member(tenant, name, member, by=by)

    with_hub(main)
    console.print(f"{member} added to {name}")


@teams_app.command("remove")
def team_remove(
    name: str = typer.Argument(...),
    member: str = typer.Argument(...),
    tenant: str = TENANT_OPTION,
    actor: str | None = ACTOR_OPTION,
) -> None:
    """Remove an actor from a team."""
    by = actor_or_default(actor)

    async def main(hub: Hub) -> None:
        await hub.services.access.check(by, tenant, Permission.ACCESS_MANAGE)
        await hub.services.access.remove_member(tenant, name, member, by=by)

    with_hub(main)
    console.print(f"{member} removed from {name}")


@teams_app.command("delete")
def team_delete(
    name: str = typer.Argument(...), tenant: str = TENANT_OPTION, actor: str | None = ACTOR_OPTION
) -> None:
    """Delete a team (its members lose the team's role)."""
    by = actor_or_default(actor)

    async def main(hub: Hub) -> bool:
        await hub.services.access.check(by, tenant, Permission.ACCESS_MANAGE)
        return await hub.services.access.delete_team(tenant, name, by=by)

    with_hub(main)
    console.print(f"team {name} deleted")


@teams_app.command("list")
def team_list(tenant: str = TENANT_OPTION, actor: str | None = ACTOR_OPTION) -> None:
    """Teams of a tenant with their roles and members."""
    by = actor_or_default(actor)

    async def main(hub: Hub) -> list[tuple[str, str, str]]:
        await hub.services.access.check(by, tenant, Permission.ACCESS_MANAGE)
        return [
            (t.name, t.role.value, ", ".join(t.members))
            for t in await hub.services.access.teams(tenant)
        ]

    table = Table(title=f"Teams of {tenant}")
    for col in ("team", "role", "members"):
        table.add_column(col)
    for row in with_hub(main):
        table.add_row(*row)
    console.print(table)

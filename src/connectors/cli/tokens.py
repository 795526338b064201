"""``connectors tokens``: API tokens for the server (hashed at rest, shown once)."""

from __future__ import annotations

import datetime as dt
import json

import typer
from rich.table import Table

from connectors.access.roles import Permission, Role
from connectors.cli._common import ACTOR_OPTION, TENANT_OPTION, actor_or_default, console, with_hub
from connectors.errors import NotFound
from connectors.hub import Hub

app = typer.Typer(help="Create, list and revoke API tokens for the server.")


@app.command("create")
def create(
    tenant: str = TENANT_OPTION,
    role: Role = typer.Option(..., "--role", help="admin, editor or viewer."),
    name: str = typer.Option(..., "--name", help="What the token is for."),
    expires_in_days: int | None = typer.Option(None, min=1, help="Expire after N days."),
    actor: str | None = ACTOR_OPTION,
) -> None:
    """Create a token. Its value is printed once; only a hash is stored."""
    who = actor_or_default(actor)
    expires = (
        dt.datetime.now(dt.UTC) + dt.timedelta(days=expires_in_days) if expires_in_days else None
    )

    async def main(hub: Hub) -> tuple[str, str]:
        await hub.services.access.check(who, tenant, Permission.TOKEN_MANAGE)
        secret, info = await hub.services.api_tokens.create(
            tenant, role, name=name, created_by=who, expires_at=expires
        )
        return secret.reveal(), info.id

    value, token_id = with_hub(main)
    console.print(f"token id {token_id} (tenant {tenant}, role {role.value})")
    console.print("Store this token now; it is not shown again:")
    print(value)  # plain stdout, so scripts can capture it


@app.command("list")
def list_tokens(
    tenant: str = TENANT_OPTION,
    as_json: bool = typer.Option(False, "--json"),
    actor: str | None = ACTOR_OPTION,
) -> None:
    """List a tenant's tokens (never their values)."""
    who = actor_or_default(actor)

    async def main(hub: Hub) -> list[dict[str, object]]:
        await hub.services.access.check(who, tenant, Permission.TOKEN_MANAGE)
        return [
            {
                "id": t.id,
                "name": t.name,
                "role": t.role.value,
                "created_by": t.created_by,
                "created_at": t.created_at.isoformat(),
                "expires_at": t.expires_at.isoformat() if t.expires_at else None,
                "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
                "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
            }
            for t in await hub.services.api_tokens.list(tenant)
        ]

    rows = with_hub(main)
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table(title=f"API tokens of {tenant}")
    for col in ("id", "name", "role", "expires", "revoked", "last used"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            *(
                str(r[k] or "-")
                for k in ("id", "name", "role", "expires_at", "revoked_at", "last_used_at")
            )
        )
    console.print(table)


@app.command("revoke")
def revoke(
    token_id: str = typer.Argument(..., help="The token id (not its value)."),
    tenant: str = TENANT_OPTION,
    actor: str | None = ACTOR_OPTION,
) -> None:
    """Revoke a token at once."""
    who = actor_or_default(actor)

    async def main(hub: Hub) -> bool:
        await hub.services.access.check(who, tenant, Permission.TOKEN_MANAGE)
        return await hub.services.api_tokens.revoke(token_id, tenant=tenant)

    if not with_hub(main):
        raise NotFound(f"no active token {token_id!r} in tenant {tenant!r}", tenant=tenant)
    console.print(f"revoked {token_id}")

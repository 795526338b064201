"""``connectors credentials``: store, list, delete credentials; rotate the master key.

Values are read from a hidden prompt or standard input — never from the command line, where they
would land in shell history and process listings.
"""

from __future__ import annotations

import json
import sys

import typer
from rich.table import Table

from connectors.access.roles import Permission
from connectors.cli._common import (
    ACTOR_OPTION,
    TENANT_OPTION,
    actor_or_default,
    console,
    read_secret,
    with_hub,
)
from connectors.context import DEFAULT_ACTOR
from connectors.errors import AccessDenied
from connectors.hub import Hub
from connectors.secrets.credential import JSONValue

app = typer.Typer(help="Store, list and delete credentials; rotate the master key.")


@app.command("set")
def set_credential(
    name: str = typer.Argument(..., help="Credential name, e.g. 'salesforce'."),
    tenant: str = TENANT_OPTION,
    field: list[str] = typer.Option(
        ["value"],
        "--field",
        "-f",
        help="Field(s) to set; each is prompted for (or read from stdin when only one).",
    ),
    json_stdin: bool = typer.Option(
        False, "--json", help="Read all fields as one JSON object from standard input."
    ),
    scopes: str | None = typer.Option(None, help="Granted scopes (space separated), metadata."),
    expected_version: int | None = typer.Option(
        None, help="Compare-and-swap: only update if the stored version is this (0 = new)."
    ),
    actor: str | None = ACTOR_OPTION,
) -> None:
    """Store a credential for a tenant (a new version; old versions are not kept readable)."""
    who = actor_or_default(actor)
    if json_stdin:
        data = json.loads(sys.stdin.read())
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise typer.BadParameter("--json expects an object of string fields on stdin")
        fields = {str(k): v for k, v in data.items()}
    else:
        if len(field) > 1 and not sys.stdin.isatty():
            raise typer.BadParameter("several fields from a pipe: use --json")
        fields = {f: read_secret(f"{name}.{f}") for f in field}
    metadata: dict[str, JSONValue] = {}
    if scopes:
        metadata["scopes"] = list[JSONValue](scopes.split())

    async def main(hub: Hub) -> int:
        await hub.services.access.check(who, tenant, Permission.CREDENTIAL_WRITE)
        return await hub.services.credentials.put(
            tenant,
            name,
            fields,
            metadata=metadata or None,
            actor=who,
            expected_version=expected_version,
        )

    version = with_hub(main)
    console.print(f"stored {name!r} for tenant {tenant!r} as version {version}")


@app.command("list")
def list_credentials(
    tenant: str = TENANT_OPTION,
    as_json: bool = typer.Option(False, "--json"),
    actor: str | None = ACTOR_OPTION,
) -> None:
    """List a tenant's credentials: names, versions, fields and metadata — never values."""
    who = actor_or_default(actor)

    async def main(hub: Hub) -> list[dict[str, object]]:
        await hub.services.access.check(who, tenant, Permission.CREDENTIAL_READ_METADATA)
        infos = await hub.services.credentials.list(tenant)
        return [
            {
                "name": i.name,
                "version": i.version,
                "fields": list(i.field_names),
                "metadata": dict(i.metadata),
                "updated_at": i.updated_at.isoformat(),
                "updated_by": i.updated_by,
            }
            for i in infos
        ]

    rows = with_hub(main)
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table(title=f"Credentials of {tenant}")
    for col in ("name", "version", "fields", "updated", "by"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["name"]),
            str(r["version"]),
            ", ".join(r["fields"]),  # type: ignore[arg-type]
            str(r["updated_at"]),
            str(r["updated_by"]),
        )
    console.print(table)


@app.command("delete")
def delete_credential(
    name: str = typer.Argument(...),
    tenant: str = TENANT_OPTION,
    actor: str | None = ACTOR_OPTION,
) -> None:
    """Delete (tombstone) a credential."""
    who = actor_or_default(actor)

    async def main(hub: Hub) -> None:
        await hub.services.access.check(who, tenant, Permission.CREDENTIAL_WRITE)
        await hub.services.credentials.delete(tenant, name, actor=who)

    with_hub(main)
    console.print(f"deleted {name!r} for tenant {tenant!r}")


@app.command("rotate-master-key")
def rotate_master_key(actor: str | None = ACTOR_OPTION) -> None:
    """Re-wrap every tenant data key with the first key of CONNECTOR_MASTER_KEYS, online.

    Put the new key first in CONNECTOR_MASTER_KEYS (keep the old one after it), run this, then
    remove the old key once no data key uses it.
    """
    who = actor_or_default(actor)
    if who != DEFAULT_ACTOR:
        raise AccessDenied(
            "rotating the master key is reserved to the service identity",
            hint="run it without --actor, as the operator holding CONNECTOR_MASTER_KEYS",
        )

    async def main(hub: Hub) -> int:
        return await hub.services.credentials.rotate_master_key(actor=who)

    count = with_hub(main)
    console.print(f"re-wrapped {count} tenant data key(s) with the current master key")

"""``connectors audit``: list, verify and export the audit log."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Literal

import typer
from rich.table import Table

from connectors.access.roles import Permission
from connectors.audit.query import AuditQuery, export, list_events, tenants, verify
from connectors.cli._common import ACTOR_OPTION, actor_or_default, console, with_hub
from connectors.errors import InvalidRequest
from connectors.hub import Hub

app = typer.Typer(help="List, verify and export the audit log.")


def _when(value: str | None, name: str) -> dt.datetime | None:
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidRequest(
            f"{name}: {value!r} is not an ISO date/time", hint="e.g. 2026-11-26T09:00:00Z"
        ) from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


@app.command("list")
def list_cmd(
    tenant: str = typer.Option(..., "--tenant", "-t"),
    since: str | None = typer.Option(None, help="ISO time, inclusive."),
    until: str | None = typer.Option(None, help="ISO time, exclusive."),
    connector: str | None = typer.Option(None),
    outcome: str | None = typer.Option(None, help="success, failure or denied."),
    kind: str | None = typer.Option(None, help="operation, credential.put, token.refresh, ..."),
    limit: int = typer.Option(50, min=1, max=1000),
    as_json: bool = typer.Option(False, "--json"),
    actor: str | None = ACTOR_OPTION,
) -> None:
    """The newest audit events of a tenant, with filters."""
    who = actor_or_default(actor)
    query = AuditQuery(
        tenant=tenant,
        since=_when(since, "--since"),
        until=_when(until, "--until"),
        connector=connector,
        outcome=outcome,
        kind=kind,
        limit=limit,
    )

    async def main(hub: Hub) -> list[dict[str, object]]:
        await hub.services.access.check(who, tenant, Permission.AUDIT_READ)
        page = await list_events(hub.services.database, query)
        return [e.to_dict() for e in page.events]

    rows = with_hub(main)
    if as_json:
        console.print_json(json.dumps(rows, default=str))
        return
    table = Table(title=f"Audit events of {tenant}")
    for col in ("time", "actor", "kind", "connector", "operation", "outcome", "code"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            *(
                str(r.get(k) or "-")
                for k in (
                    "timestamp",
                    "actor",
                    "kind",
                    "connector",
                    "operation",
                    "outcome",
                    "error_code",
                )
            )
        )
    console.print(table)


@app.command("verify")
def verify_cmd(
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="Default: every tenant."),
    actor: str | None = ACTOR_OPTION,
) -> None:
    """Check the hash chain: edited, deleted or reordered rows are reported (exit 1)."""
    who = actor_or_default(actor)

    async def main(hub: Hub) -> list[tuple[str, bool, int, str]]:
        db = hub.services.database
        names = [tenant] if tenant else await tenants(db)
        out = []
        for name in names:
            await hub.services.access.check(who, name, Permission.AUDIT_READ)
            result = await verify(db, name)
            problem = result.first_problem
            out.append((name, result.ok, result.events, str(problem) if problem else ""))
        return out

    results = with_hub(main)
    bad = False
    for name, ok, count, problem in results:
        if ok:
            console.print(f"[green]ok[/]   {name}: {count} events, chain intact")
        else:
            bad = True
            console.print(f"[red]FAIL[/] {name}: {problem}")
    if bad:
        raise typer.Exit(1)


@app.command("export")
def export_cmd(
    tenant: str = typer.Option(..., "--tenant", "-t"),
    fmt: str = typer.Option("jsonl", "--format", help="jsonl or csv."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Default: stdout."),
    since: str | None = typer.Option(None),
    until: str | None = typer.Option(None),
    actor: str | None = ACTOR_OPTION,
) -> None:
    """Export every matching event, oldest first."""
    who = actor_or_default(actor)
    if fmt not in ("jsonl", "csv"):
        raise InvalidRequest(f"unknown format {fmt!r}", hint="use --format jsonl or csv")
    chosen: Literal["jsonl", "csv"] = "csv" if fmt == "csv" else "jsonl"
    query = AuditQuery(tenant=tenant, since=_when(since, "--since"), until=_when(until, "--until"))

    async def main(hub: Hub) -> int:
        await hub.services.access.check(who, tenant, Permission.AUDIT_READ)
        count = 0
        sink = output.open("w", encoding="utf-8") if output else None
        try:
            async for line in export(hub.services.database, query, chosen):
                if sink:
                    sink.write(line)
                else:
                    print(line, end="")
                count += 1
        finally:
            if sink:
                sink.close()
        return count

    count = with_hub(main)
    if output:
        console.print(f"wrote {count} line(s) to {output}")

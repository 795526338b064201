"""``connectors webhooks``: dead letters, replay and the attempts log of the webhook outbox.

Mounted on the root app by the lead (``app.add_typer(webhooks_app, name="webhooks")``). Every
command reads the database from ``--database-url``, else the settings
(``CONNECTOR_DATABASE_URL``, else the embedded SQLite file).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

import typer
from rich.console import Console
from rich.table import Table

from connectors.adapters.webhook.outbox import WebhookOutbox
from connectors.config.settings import Settings
from connectors.errors import ConnectorError
from connectors.storage.db import Database

__all__ = ["webhooks_app"]

T = TypeVar("T")

webhooks_app = typer.Typer(
    name="webhooks",
    help="Webhook outbox: dead letters, replay, attempts log.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

_console = Console()
_err = Console(stderr=True)

_DB_OPTION = typer.Option(None, "--database-url", help="SQLAlchemy URL (default: settings).")
_TENANT_OPTION = typer.Option(None, "--tenant", help="Only this tenant (default: all).")


def _with_outbox(url: str | None, fn: Callable[[WebhookOutbox], Awaitable[T]]) -> T:
    async def main() -> T:
        db = Database(url or Settings.load().effective_database_url())
        try:
            return await fn(WebhookOutbox(db))
        finally:
            await db.dispose()

    try:
        return asyncio.run(main())
    except ConnectorError as exc:
        _err.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


@webhooks_app.command("replay")
def replay(
    endpoint: str | None = typer.Option(None, "--endpoint", help="Only this endpoint's."),
    message_id: str | None = typer.Option(None, "--id", help="Only this message."),
    tenant: str | None = _TENANT_OPTION,
    database_url: str | None = _DB_OPTION,
) -> None:
    """Queue dead letters again (same webhook-id, fresh retry schedule)."""
    ids = _with_outbox(
        database_url,
        lambda o: o.replay(tenant, endpoint_id=endpoint, message_id=message_id),
    )
    _console.print(f"replayed {len(ids)} message(s)")
    for msg_id in ids:
        _console.print(f"  {msg_id}")


@webhooks_app.command("list-dead")
def list_dead(
    endpoint: str | None = typer.Option(None, "--endpoint", help="Only this endpoint's."),
    tenant: str | None = _TENANT_OPTION,
    limit: int = typer.Option(100, "--limit", min=1),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    database_url: str | None = _DB_OPTION,
) -> None:
    """List dead letters not yet replayed, newest first."""
    letters = _with_outbox(
        database_url, lambda o: o.dead_letters(tenant, endpoint_id=endpoint, limit=limit)
    )
    if as_json:
        _console.print_json(json.dumps([d.to_dict() for d in letters]))
        return
    table = Table(title="Dead letters")
    for column in ("message", "endpoint", "event", "attempts", "at", "reason"):
        table.add_column(column)
    for d in letters:
        table.add_row(
            d.message_id, d.endpoint_id, d.event_type, str(d.attempts), _when(d.at), d.reason
        )
    _console.print(table)


@webhooks_app.command("attempts")
def attempts(
    message_id: str | None = typer.Option(None, "--id", help="Only this message."),
    endpoint: str | None = typer.Option(None, "--endpoint", help="Only this endpoint."),
    tenant: str | None = _TENANT_OPTION,
    limit: int = typer.Option(100, "--limit", min=1),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    database_url: str | None = _DB_OPTION,
) -> None:
    """Show the attempts log (status, latency, redacted answer excerpt)."""
    rows = _with_outbox(
        database_url,
        lambda o: o.attempts(tenant, message_id=message_id, endpoint_id=endpoint, limit=limit),
    )
    if as_json:
        _console.print_json(json.dumps([a.to_dict() for a in rows]))
        return
    table = Table(title="Delivery attempts")
    for column in ("message", "#", "at", "outcome", "status", "ms", "error"):
        table.add_column(column)
    for a in rows:
        table.add_row(
            a.message_id,
            str(a.attempt),
            _when(a.at),
            a.outcome,
            "" if a.status is None else str(a.status),
            "" if a.latency_ms is None else f"{a.latency_ms:.1f}",
            a.error or "",
        )
    _console.print(table)

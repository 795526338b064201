"""Public-API examples that must type-check under mypy --strict (run by `make typecheck`).

This file is not collected by pytest (no test_ prefix); it exists for the type checker, so users'
code written like this stays well typed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import connectors
from connectors import CallContext, Connector, Deadline, Hub, operation


class Tickets(Connector):
    name = "tickets"
    version = "1.0.0"

    @operation(idempotent=True, scopes=("tickets:read",), audit_target="ticket_id")
    async def get(self, ticket_id: str, *, expand: bool = False) -> dict[str, str]:
        response = await self.request("GET", f"/tickets/{ticket_id}")
        data: dict[str, str] = response.json()
        return data

    @operation(idempotent=True)
    async def stream(self, limit: int) -> AsyncIterator[str]:
        for i in range(limit):
            yield str(i)


async def use_async(hub: Hub) -> None:
    async with hub.open("tickets", tenant_id="acme") as conn:
        assert isinstance(conn, Tickets)
        ticket: dict[str, str] = await conn.get("T-1", expand=True)
        items: list[str] = [item async for item in conn.stream(3)]
        print(ticket, items)


def use_sync() -> None:
    conn = connectors.get_connector("tickets", tenant_id="acme")
    try:
        print(conn.get("T-1"))
    finally:
        conn.close()


def use_context() -> CallContext:
    return CallContext(tenant="acme", actor="alice", deadline=Deadline.after(5.0))


def handle(err: connectors.ConnectorError) -> float | None:
    if isinstance(err, connectors.RateLimited):
        return err.retry_after
    return None

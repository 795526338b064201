"""A custom adapter, tested without a network: run with `python docs/examples/custom_adapter.py`.

It defines a two-operation adapter, registers it on a Hub whose transport is a mock router, and
calls it through both faces. The test suite runs this file.
"""

from __future__ import annotations

import asyncio

import connectors
from connectors import Connector, Hub, operation
from connectors.config.settings import Settings
from connectors.registry import AdapterRegistry
from connectors.testing.transport import MockRouter


class Tickets(Connector):
    """A tiny ticketing API."""

    name = "tickets"
    version = "1.0.0"

    @operation(idempotent=True, scopes=("tickets:read",), audit_target="ticket_id")
    async def get(self, ticket_id: str) -> dict[str, str]:
        response = await self.request("GET", f"/tickets/{ticket_id}")
        data: dict[str, str] = response.json()
        return data

    @operation(idempotent=False)
    async def create(self, title: str) -> str:
        response = await self.request("POST", "/tickets", json={"title": title})
        return str(response.json()["id"])


def build_hub() -> Hub:
    router = MockRouter()
    router.get("/tickets/T-1", json={"id": "T-1", "title": "Printer on fire"})
    router.post("/tickets", json={"id": "T-2"}, status=201)
    registry = AdapterRegistry(discover=False)
    registry.register(Tickets)
    return Hub(
        Settings.load({}),
        registry=registry,
        transports={"tickets": router.transport()},
    )


async def async_face(hub: Hub) -> None:
    async with connectors.open_connector("tickets", tenant_id="acme", hub=hub) as conn:
        assert isinstance(conn, Tickets)
        print("async:", await conn.get("T-1"))


def sync_face(hub: Hub) -> None:
    conn = connectors.get_connector("tickets", tenant_id="acme", hub=hub)
    try:
        print("sync:", conn.create("Toner low"))
    finally:
        conn.close()


if __name__ == "__main__":
    hub = build_hub()
    asyncio.run(async_face(hub))
    sync_face(hub)

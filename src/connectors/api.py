"""The module-level entry points: ``get_connector`` (sync) and ``open_connector`` (async)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from connectors.base import Connector
from connectors.context import DEFAULT_ACTOR
from connectors.hub import Hub
from connectors.sync import SyncConnector, background_loop

__all__ = ["get_connector", "open_connector"]


@asynccontextmanager
async def open_connector(
    name: str,
    *,
    tenant_id: str,
    actor: str = DEFAULT_ACTOR,
    settings: Mapping[str, object] | None = None,
    hub: Hub | None = None,
) -> AsyncIterator[Connector]:
    """Open a connector for one tenant and actor, for the duration of the ``async with`` block.

    ::

        async with connectors.open_connector("salesforce", tenant_id="acme-corp") as sf:
            async for record in sf.query_iter("SELECT Id FROM Contact"):
                ...
    """
    async with (hub or Hub.default()).open(
        name, tenant_id=tenant_id, actor=actor, settings=settings
    ) as conn:
        yield conn


def get_connector(
    name: str,
    *,
    tenant_id: str,
    actor: str = DEFAULT_ACTOR,
    settings: Mapping[str, object] | None = None,
    hub: Hub | None = None,
) -> SyncConnector:
    """A connected, blocking connector for scripts and notebooks.

    ::

        sf = connectors.get_connector("salesforce", tenant_id="acme-corp")
        contacts = sf.query("SELECT Id, Name, Email FROM Contact LIMIT 10")

    The connector runs on a background event loop shared by the process; ``sf.close()`` (or
    interpreter exit) disconnects it.
    """
    loop = background_loop()
    the_hub = hub or Hub.default()
    conn = the_hub.connector(name, tenant_id=tenant_id, actor=actor, settings=settings)
    loop.run(the_hub.start())
    loop.run(conn.connect())
    return SyncConnector(conn, loop)

"""Shared fixtures: a tiny adapter over a mock transport and a Hub built around it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from connectors.base import Connector, operation
from connectors.config.settings import Settings
from connectors.hub import Hub
from connectors.registry import AdapterRegistry
from connectors.resilience import set_testing


class EchoConnector(Connector):
    """A minimal adapter used by the core tests."""

    name = "echo"
    version = "1.2.3"

    @operation(idempotent=True, scopes=("echo:read",), audit_target="text")
    async def echo(self, text: str) -> str:
        response = await self.request("GET", "/echo", params={"q": text})
        return str(response.json()["echo"])

    @operation(idempotent=False, audit_target="text")
    async def create(self, text: str) -> str:
        response = await self.request("POST", "/items", json={"text": text})
        return str(response.json()["id"])

    @operation(idempotent=True)
    async def pages(self, count: int) -> AsyncIterator[int]:
        for page in range(count):
            response = await self.request("GET", "/echo", params={"q": str(page)})
            yield int(response.json()["echo"])


def echo_transport(log: list[httpx2.Request] | None = None) -> httpx2.MockTransport:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if log is not None:
            log.append(request)
        if request.url.path == "/echo":
            return httpx2.Response(200, json={"echo": request.url.params["q"]})
        if request.url.path == "/items":
            body = json.loads(request.content)
            return httpx2.Response(201, json={"id": f"id-{body['text']}"})
        return httpx2.Response(404, json={"error": "not found"})

    return httpx2.MockTransport(handler)


@pytest.fixture
def no_waits() -> Iterator[None]:
    """Backoff and limiter waits off for the test (the resilience layer's test mode)."""
    set_testing(True)
    try:
        yield
    finally:
        set_testing(False)


@pytest.fixture
def registry() -> AdapterRegistry:
    reg = AdapterRegistry(discover=False, builtins={})
    reg.register(EchoConnector)
    return reg


def make_hub(
    tmp_path: Path,
    transport: httpx2.AsyncBaseTransport | None = None,
    *,
    grants: Iterable[tuple[str, str, str]] = (("alice", "acme", "editor"),),
    **kwargs: Any,
) -> Hub:
    """A Hub over the echo adapter, its data under ``tmp_path``, with real role grants."""
    registry = AdapterRegistry(discover=False, builtins={})
    registry.register(EchoConnector)
    hub = Hub(
        Settings.load({}, data_dir=tmp_path / "data"),
        registry=registry,
        transports={"echo": transport or echo_transport()},
        **kwargs,
    )

    async def setup() -> None:
        await hub.start()
        for actor, tenant, role in grants:
            await hub.services.access.grant(actor, tenant, role)

    asyncio.run(setup())
    return hub


@pytest.fixture
def hub(tmp_path: Path) -> Hub:
    return make_hub(tmp_path)

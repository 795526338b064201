"""Shared fixtures: a tiny adapter over a mock transport and a Hub built around it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

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


@pytest.fixture
def hub(registry: AdapterRegistry) -> Hub:
    return Hub(
        Settings.load({}),
        registry=registry,
        transports={"echo": echo_transport()},
    )

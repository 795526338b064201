"""Helpers for the server tests: a Hub over the echo adapter with two tenants and a token per
role, an ASGI client, and a background event loop shared by a module's tests."""

from __future__ import annotations

from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx2

from connectors.access.roles import Role
from connectors.clock import Clock, system_clock
from connectors.config.definition import ConnectorDefinition
from connectors.config.settings import Settings
from connectors.hub import Hub
from connectors.registry import AdapterRegistry
from connectors.server.app import create_app
from connectors.server.inbound import InboundRegistry
from connectors.server.settings import ServerSettings
from connectors.sync import BackgroundLoop
from tests.conftest import EchoConnector, echo_transport

T = TypeVar("T")

TENANTS = ("acme", "globex")
#: The canary: stored as a credential field of every tenant; must never appear in any answer.
CANARY = "canary-s3cr3t-value-7f2b9c41d0"


@dataclass
class Env:
    """A running test server: hub, app, tokens by (tenant, role)."""

    hub: Hub
    app: object
    tokens: dict[tuple[str, Role], str] = field(default_factory=dict)
    settings: ServerSettings = field(default_factory=ServerSettings)

    def client(
        self, token: str | None = None, *, address: str = "127.0.0.1", **kw: object
    ) -> httpx2.AsyncClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx2.AsyncClient(
            transport=httpx2.ASGITransport(app=self.app, client=(address, 50000)),  # type: ignore[arg-type]
            base_url="http://testserver",
            headers=headers,
            **kw,  # type: ignore[arg-type]
        )

    def token(self, tenant: str, role: Role | str) -> str:
        return self.tokens[(tenant, Role.parse(role))]


def make_server_hub(
    tmp_path: Path,
    transport: httpx2.AsyncBaseTransport | None = None,
    *,
    clock: Clock = system_clock,
    threshold: int = 3,
) -> Hub:
    """A Hub with two echo connectors (``echo`` for acme, ``echo-b`` for globex)."""
    registry = AdapterRegistry(discover=False, builtins={})
    registry.register(EchoConnector)
    resilience = {
        "retry": {"max_attempts": 1},
        "circuit_breaker": {"threshold": threshold, "reset_ms": 60_000},
    }
    definitions = {
        "echo": ConnectorDefinition.model_validate(
            {"type": "echo", "settings": {"base_url": "http://echo.test"}, "resilience": resilience}
        ),
        "echo-b": ConnectorDefinition.model_validate(
            {"type": "echo", "settings": {"base_url": "http://echo.test"}, "resilience": resilience}
        ),
    }
    shared = transport or echo_transport()
    return Hub(
        Settings.load({}, data_dir=tmp_path / "data", dev_mode=True),
        definitions=definitions,
        registry=registry,
        transports={"echo": shared, "echo-b": shared},
        clock=clock,
    )


DEFAULT_SETTINGS = ServerSettings(
    tenant_connectors={"acme": ("echo",), "globex": ("echo-b",)},
    probe_interval=None,
    login_attempts=5,
)


async def setup_env(
    hub: Hub, settings: ServerSettings = DEFAULT_SETTINGS, inbound: InboundRegistry | None = None
) -> Env:
    await hub.start()
    app = create_app(hub, settings=settings, inbound=inbound)
    env = Env(hub, app, settings=settings)
    for tenant in TENANTS:
        await hub.services.credentials.put(
            tenant, "echo", {"value": CANARY}, metadata={"kind": "api_key"}, actor="test"
        )
        for role in Role:
            secret, _info = await hub.services.api_tokens.create(
                tenant, role, name=f"{tenant}-{role.value}", created_by="test"
            )
            env.tokens[(tenant, role)] = secret.reveal()
    return env


@contextmanager
def background() -> Iterator[BackgroundLoop]:
    """A loop in a thread, so several tests can share one Hub and database."""
    loop = BackgroundLoop()
    try:
        yield loop
    finally:
        loop.shutdown()


def run(loop: BackgroundLoop, coro: Awaitable[T]) -> T:
    async def wrap() -> T:
        return await coro

    return loop.run(wrap(), timeout=60)

"""The ``connectors`` pytest plugin (registered through the ``pytest11`` entry point).

Installed with the framework, so a user's own test suite gets these fixtures with no set-up:

- ``connectors_hub``: a :class:`~connectors.hub.Hub` isolated from ``CONNECTOR_*`` variables,
  its SQLite database and dev-mode master key under a temporary folder, with the emulators'
  transports registered under the names ``salesforce`` and ``slack``;
- ``salesforce_emulator`` / ``slack_emulator``: emulators served in process (through
  ``httpx2.ASGITransport``), each behind a :class:`~connectors.testing.faults.FaultInjector`
  that injects nothing until the test says so (``faults.set(...)``);
- ``salesforce_loopback`` / ``slack_loopback``: the same emulators served by uvicorn on a free
  127.0.0.1 port (for code that builds its own HTTP clients), with their base URL;
- ``connectors_logs``: structlog events emitted during the test, after redaction;
- ``connectors_audit``: a function returning the audit events written so far (flushes first).

Example (a user's test)::

    def test_new_lead_posts_to_slack(connectors_hub, salesforce_emulator, slack_emulator):
        async def main():
            async with connectors_hub.open("salesforce", tenant_id="acme") as sf:
                await sf.create("Lead", {"LastName": "Smith", "Company": "Acme"})
        asyncio.run(main())
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import pytest
import uvicorn
from starlette.types import ASGIApp

from connectors.audit.query import AuditQuery, list_events
from connectors.config.settings import Settings
from connectors.hub import Hub
from connectors.testing.capture import capture_logs
from connectors.testing.faults import FaultInjector, FaultPlan
from connectors.testing.salesforce import (
    SalesforceEmulator,
    SalesforceEmulatorConfig,
    create_salesforce_app,
)
from connectors.testing.salesforce.faults import salesforce_faults
from connectors.testing.slack.config import SlackEmulatorConfig
from connectors.testing.slack.emulator import SlackEmulator

__all__ = [
    "EmulatorHandle",
    "LoopbackServer",
    "connectors_audit",
    "connectors_hub",
    "connectors_logs",
    "salesforce_emulator",
    "salesforce_loopback",
    "slack_emulator",
    "slack_loopback",
]

#: The base URL in-process emulators answer on (any host works through the ASGI transport).
SALESFORCE_URL = "https://emulated.my.salesforce.com"
SLACK_URL = "https://slack.com/api/"


@dataclass
class EmulatorHandle:
    """An emulator, the fault injector in front of it, and a transport to reach both."""

    emulator: SalesforceEmulator | SlackEmulator
    faults: FaultInjector
    transport: httpx2.ASGITransport
    base_url: str


def _quiet_faults(app: ASGIApp, on_expire: Callable[[], object] | None = None) -> FaultInjector:
    return FaultInjector(app, FaultPlan(), seed=0, on_expire_tokens=on_expire)


@pytest.fixture
def salesforce_emulator() -> Iterator[EmulatorHandle]:
    """An in-process Salesforce emulator (seeded org) behind a quiet fault injector."""
    emulator = create_salesforce_app(SalesforceEmulatorConfig(instance_url=SALESFORCE_URL))
    faults = salesforce_faults(
        emulator.app, FaultPlan(), on_expire_tokens=emulator.expire_all_sessions
    )
    yield EmulatorHandle(emulator, faults, httpx2.ASGITransport(app=faults), SALESFORCE_URL)
    emulator.close()


@pytest.fixture
def slack_emulator() -> EmulatorHandle:
    """An in-process Slack emulator (seeded workspace) behind a quiet fault injector."""
    emulator = SlackEmulator(SlackEmulatorConfig())
    faults = _quiet_faults(emulator.app, emulator.expire_tokens)
    return EmulatorHandle(emulator, faults, httpx2.ASGITransport(app=faults), SLACK_URL)


@dataclass
class LoopbackServer:
    """An ASGI app served by uvicorn on 127.0.0.1 in a background thread."""

    app: ASGIApp
    host: str = "127.0.0.1"
    port: int = 0
    _server: uvicorn.Server | None = field(default=None, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> LoopbackServer:
        if not self.port:
            with socket.socket() as sock:
                sock.bind((self.host, 0))
                self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app, host=self.host, port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve()),  # type: ignore[union-attr]
            name=f"loopback-{self.port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"the loopback server on port {self.port} did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def salesforce_loopback() -> Iterator[tuple[SalesforceEmulator, LoopbackServer]]:
    """A Salesforce emulator served on a free loopback port (``server.url``)."""
    port = _free_port()
    emulator = create_salesforce_app(
        SalesforceEmulatorConfig(instance_url=f"http://127.0.0.1:{port}")
    )
    server = LoopbackServer(emulator.app, port=port).start()
    yield emulator, server
    server.stop()
    emulator.close()


@pytest.fixture
def slack_loopback() -> Iterator[tuple[SlackEmulator, LoopbackServer]]:
    """A Slack emulator served on a free loopback port (``server.url + "/api/"``)."""
    emulator = SlackEmulator(SlackEmulatorConfig())
    server = LoopbackServer(emulator.app).start()
    yield emulator, server
    server.stop()


@pytest.fixture
def connectors_hub(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Hub]:
    """A Hub isolated from ``CONNECTOR_*`` variables, its data under a temporary folder.

    When the test also uses ``salesforce_emulator`` / ``slack_emulator``, their transports are
    registered on the Hub under the connector names ``salesforce`` and ``slack``.
    """
    data_dir: Path = tmp_path_factory.mktemp("connectors-data")
    transports: dict[str, httpx2.AsyncBaseTransport] = {}
    for name, fixture in (("salesforce", "salesforce_emulator"), ("slack", "slack_emulator")):
        if fixture in request.fixturenames:
            handle: EmulatorHandle = request.getfixturevalue(fixture)
            transports[name] = handle.transport
    hub = Hub(Settings.load({}, data_dir=data_dir, dev_mode=True), transports=transports)
    yield hub
    asyncio.run(hub.aclose())


@pytest.fixture
def connectors_logs() -> Iterator[list[dict[str, object]]]:
    """Structlog events emitted during the test, as dicts, after redaction."""
    with capture_logs() as events:
        yield events


@pytest.fixture
def connectors_audit(connectors_hub: Hub) -> Callable[..., list[dict[str, object]]]:
    """``connectors_audit(tenant=..., **filters)``: the audit events written so far, newest
    first, as dicts (events still queued on a finished loop were flushed when it closed)."""

    def read(tenant: str | None = None, **filters: object) -> list[dict[str, object]]:
        async def main() -> list[dict[str, object]]:
            await connectors_hub.start()
            query = AuditQuery(tenant=tenant, limit=1000, **filters)  # type: ignore[arg-type]
            page = await list_events(connectors_hub.services.database, query)
            return [e.to_dict() for e in page.events]

        return asyncio.run(main())

    return read

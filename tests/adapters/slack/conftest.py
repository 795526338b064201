"""Fixtures for the Slack adapter tests: the emulator in process, a Hub, an open connector."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx2
import pytest

from connectors.adapters.slack import SlackConnector
from connectors.auth import InMemoryLockProvider, InMemoryTokenStore, TokenManager
from connectors.clock import Clock, FakeClock
from connectors.config.settings import Settings
from connectors.hub import Hub
from connectors.registry import AdapterRegistry
from connectors.secrets import Secret
from connectors.testing.slack import SlackEmulator, SlackEmulatorConfig, build_server

BASE_URL = "https://slack.test/api/"
T = TypeVar("T")
_counter = itertools.count()


class CountingTransport(httpx2.AsyncBaseTransport):
    """Wraps a transport and records every response status and request (for assertions)."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self.inner = inner
        self.statuses: list[int] = []
        self.requests: list[httpx2.Request] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        response = await self.inner.handle_async_request(request)
        self.statuses.append(response.status_code)
        return response

    @property
    def throttled(self) -> int:
        return self.statuses.count(429)

    def paths(self) -> list[str]:
        return [r.url.path for r in self.requests]


@dataclass
class SlackWorld:
    """An emulator, the transport in front of it, and a Hub whose clock they share."""

    emulator: SlackEmulator
    transport: CountingTransport
    hub: Hub
    clock: Clock
    tokens: TokenManager | None = None
    defaults: dict[str, object] = field(default_factory=dict)

    def settings(self, **overrides: object) -> dict[str, object]:
        return {**self.defaults, **overrides}

    def open(self, **overrides: object) -> AbstractAsyncContextManager[SlackConnector]:
        return _open(self.hub, self.settings(**overrides))

    def run(self, coro: Coroutine[object, object, T]) -> T:
        """Run a test body on a fresh loop; the Hub's services are closed at the end."""

        async def main() -> T:
            try:
                return await coro
            finally:
                await self.hub.aclose()
                await _join_sqlite_threads()

        return asyncio.run(main())


async def _join_sqlite_threads() -> None:
    """Wait for aiosqlite's worker threads to finish before the loop closes.

    A connection the Hub's services drop without awaiting its close leaves a worker thread that
    later calls back into the (by then closed) loop, which pytest reports as an unhandled thread
    exception in whatever test runs next. Joining them here keeps each test self-contained.
    """
    for thread in threading.enumerate():
        if "_connection_worker_thread" in thread.name:
            await asyncio.to_thread(thread.join, 5)


@asynccontextmanager
async def _open(hub: Hub, settings: Mapping[str, object]) -> AsyncIterator[SlackConnector]:
    async with hub.open("slack", tenant_id="acme", settings=settings) as conn:
        assert isinstance(conn, SlackConnector)
        yield conn


def make_hub(
    data_dir: Path,
    transport: httpx2.AsyncBaseTransport | None,
    clock: Clock,
    tokens: TokenManager | None = None,
) -> Hub:
    """A Hub with the Slack adapter, its data under ``data_dir`` (operations run as the
    process's service identity, which the access policy trusts)."""
    registry = AdapterRegistry(discover=False, builtins={})
    registry.register(SlackConnector)
    transports = {"slack": transport} if transport is not None else {}
    return Hub(
        Settings.load({}, data_dir=data_dir, dev_mode=True),
        registry=registry,
        transports=transports,
        clock=clock,
        tokens=tokens,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_world(clock: FakeClock, tmp_path: Path) -> Callable[..., SlackWorld]:
    """``make_world(rotation=False, **emulator_config)``: a fresh emulator and Hub."""

    def make(*, rotation: bool = False, **config: object) -> SlackWorld:
        emulator = SlackEmulator(SlackEmulatorConfig(**config), clock=clock)  # type: ignore[arg-type]
        transport = CountingTransport(httpx2.ASGITransport(app=emulator.app))
        tokens = None
        defaults: dict[str, object] = {"base_url": BASE_URL}
        if rotation:
            tokens = TokenManager(
                InMemoryTokenStore(), InMemoryLockProvider(clock=clock), clock=clock
            )
            defaults.update(
                oauth_credential="slack-bot",
                client_id=emulator.config.client_id,
                client_secret=Secret(emulator.config.client_secret),
            )
        else:
            defaults["token"] = Secret(emulator.config.bot_token)
        hub = make_hub(tmp_path / f"data{next(_counter)}", transport, clock, tokens)
        return SlackWorld(emulator, transport, hub, clock, tokens, defaults)

    return make


@pytest.fixture
def world(make_world: Callable[..., SlackWorld]) -> SlackWorld:
    return make_world()


@dataclass
class LoopbackServer:
    emulator: SlackEmulator
    base_url: str


@pytest.fixture
def loopback() -> Iterator[LoopbackServer]:
    """The emulator served by uvicorn on 127.0.0.1 in a thread (real clock, real sockets)."""
    server, emulator = build_server("127.0.0.1", 0, SlackEmulatorConfig(), log_level="critical")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        for _ in range(1000):
            if server.started:
                break
            threading.Event().wait(0.01)
        assert server.started, "the emulator did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        yield LoopbackServer(emulator, f"http://127.0.0.1:{port}/")
    finally:
        server.should_exit = True
        thread.join(10)

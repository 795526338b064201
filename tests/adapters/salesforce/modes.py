"""One Salesforce test environment, two ways to reach the emulator: in process and over loopback.

``in_process``
    The emulator (behind a :class:`~connectors.testing.faults.FaultInjector`) is served to the
    Hub through ``httpx2.ASGITransport``; emulator, injector, token manager and Hub share one
    :class:`FakeClock`, so polls, backoff and ``Retry-After`` waits cost no real time.
``loopback``
    The same app stack is mounted on a :class:`LoopbackServer` (uvicorn on a real ``127.0.0.1``
    port, in a thread), and the Hub has no transport for ``salesforce``: the connector builds
    the network transport production uses (real sockets, HTTP/1.1 framing, keep-alive, chunked
    uploads, streamed downloads). Every clock is the system clock (the Hub's records its
    waits), so tests keep waits short (``bulk_poll_interval``, small retry delays).

A test written against :class:`ModeEnv` runs unchanged in both modes: it opens connectors with
``env.open()``, steers the org with ``env.emulator`` (thread-safe enough: the loopback server is
idle whenever the test body runs between two calls), injects faults with ``env.faults`` and
reads what reached the org from ``env.emulator.requests``. The injector's ``expire_token_at``
expires every session of the org inside the server, just before the n-th faultable request: a
point in the request sequence, whatever the client's read-ahead does.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final, Literal, TypeVar

import httpx2
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from connectors.adapters.salesforce import SalesforceConnector
from connectors.auth import InMemoryLockProvider, InMemoryTokenStore, TokenManager
from connectors.clock import Clock, FakeClock, SystemClock, system_clock
from connectors.config.settings import Settings
from connectors.hub import Hub
from connectors.registry import AdapterRegistry
from connectors.secrets import Secret
from connectors.testing.faults import FaultInjector
from connectors.testing.salesforce import (
    SalesforceEmulator,
    SalesforceEmulatorConfig,
    SeedSpec,
    create_salesforce_app,
)
from connectors.testing.salesforce.config import DEFAULT_USER
from connectors.testing.salesforce.faults import salesforce_faults

from .conftest import JWT_APP_KEY, KeyPair, jwt_app, run_closing

__all__ = [
    "MODES",
    "LoopbackServer",
    "Mode",
    "ModeEnv",
    "RecordingClock",
    "loopback_socket",
    "mode_env",
    "serving",
]

T = TypeVar("T")
Mode = Literal["in_process", "loopback"]
MODES: Final[tuple[Mode, ...]] = ("in_process", "loopback")
LOGIN_URL: Final = "https://login.salesforce.com"

#: Hub settings of every mode: short backoff (real time over loopback), enough attempts that a
#: seeded fault plan of a few tens of percent never exhausts them, and a breaker that stays
#: closed through a fault storm (the breaker has its own tests).
HUB_SETTINGS: Final[Mapping[str, object]] = {
    "retry_max_attempts": 8,
    "retry_base_delay_ms": 5,
    "retry_max_delay_ms": 20,
    "circuit_breaker_threshold": 1000,
}


@dataclass
class ModeEnv:
    """An emulated org, the fault injector in front of it, and a Hub that reaches it."""

    mode: Mode
    emulator: SalesforceEmulator
    faults: FaultInjector
    #: The Hub's clock (the emulator's too in process); it records every wait.
    clock: FakeClock | RecordingClock
    hub: Hub
    #: The org's URL as the connector sees it (``http://127.0.0.1:<port>`` over loopback).
    instance_url: str
    #: Where the token endpoint is reached (the login host in process, the server on loopback).
    token_host: str
    keys: KeyPair = field(repr=False)

    def settings(self, **overrides: object) -> dict[str, object]:
        """JWT bearer settings for the connected app, reaching this mode's token endpoint."""
        settings: dict[str, object] = {
            "client_id": JWT_APP_KEY,
            "username": DEFAULT_USER.username,
            "private_key": Secret(self.keys.private_pem, name="salesforce/private_key"),
            # The assertion's audience stays the login host; only the endpoint moves.
            "login_url": LOGIN_URL,
            "token_url": f"{self.token_host}/services/oauth2/token",
            "bulk_poll_interval": 0.01,
            "bulk_poll_max_interval": 0.02,
        }
        settings.update(overrides)
        return settings

    def run(self, factory: Callable[[], Awaitable[T]]) -> T:
        """Run an async test body on a fresh loop; the Hub's services are closed at the end."""
        return run_closing(self.hub, factory)

    @asynccontextmanager
    async def open(
        self, settings: Mapping[str, object] | None = None
    ) -> AsyncIterator[SalesforceConnector]:
        """A connected connector for tenant ``acme-corp`` (audit and access off: no database)."""
        conn = self.hub.connector(
            "salesforce",
            tenant_id="acme-corp",
            settings=self.settings() if settings is None else settings,
        )
        conn.runtime.audit = None
        conn.runtime.access = None
        assert isinstance(conn, SalesforceConnector)
        async with conn:
            yield conn

    def waits(self) -> list[float]:
        """Every positive wait on the Hub's clock so far (backoff, Retry-After, bulk polls)."""
        return [s for s in self.clock.sleeps if s > 0]

    def requests(
        self, method: str | None = None, contains: str = "", status: int | None = None
    ) -> list[tuple[str, str, int]]:
        """The requests the org answered (faults answered by the injector are not in it)."""
        return [
            r
            for r in list(self.emulator.requests)
            if (method is None or r[0] == method)
            and contains in r[1]
            and (status is None or r[2] == status)
        ]


class RecordingClock(SystemClock):
    """The system clock, remembering every wait asked of it (what ``FakeClock.sleeps`` is)."""

    __slots__ = ("sleeps",)

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await super().sleep(seconds)


def _hub(clock: Clock, data_dir: Path, transport: httpx2.AsyncBaseTransport | None) -> Hub:
    registry = AdapterRegistry(discover=False, builtins={})
    registry.register(SalesforceConnector)
    tokens = TokenManager(InMemoryTokenStore(), InMemoryLockProvider(clock=clock), clock=clock)
    return Hub(
        Settings.load({}, data_dir=data_dir, **HUB_SETTINGS),
        registry=registry,
        transports={} if transport is None else {"salesforce": transport},
        tokens=tokens,
        clock=clock,
    )


def loopback_socket() -> socket.socket:
    """A socket bound to a free ``127.0.0.1`` port (handed to uvicorn: no port race).

    The protocol must be given as ``IPPROTO_TCP``: asyncio sets ``TCP_NODELAY`` only on sockets
    that say so, and without it every keep-alive response waits ~40 ms for a delayed ACK.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serving(server: uvicorn.Server, sock: socket.socket) -> Iterator[None]:
    """Run ``server`` on ``sock`` in a daemon thread until the block ends."""
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="sf-emulator", daemon=True
    )
    thread.start()
    try:
        give_up = time.monotonic() + 10
        while not server.started:
            if not thread.is_alive() or time.monotonic() > give_up:
                raise RuntimeError("the loopback emulator did not start")
            time.sleep(0.005)
        yield
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


class LoopbackServer:
    """uvicorn on a ``127.0.0.1`` port in a thread, serving whichever app is mounted.

    One server serves a whole test module: each test mounts its own emulator stack on it (a
    fresh org per test) and unmounts it at the end, which spares every test a server start and
    stop. With nothing mounted it answers 503.
    """

    def __init__(self) -> None:
        self.app: ASGIApp | None = None
        self._sock = loopback_socket()
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.app
        if app is None:
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await app(scope, receive, send)

    @contextmanager
    def running(self) -> Iterator[LoopbackServer]:
        """Serve until the block ends."""
        config = uvicorn.Config(self, host="127.0.0.1", log_level="warning", lifespan="off")
        with serving(uvicorn.Server(config), self._sock):
            yield self


@contextmanager
def mode_env(
    mode: Mode,
    keys: KeyPair,
    data_dir: Path,
    config: SalesforceEmulatorConfig | None = None,
    *,
    server: LoopbackServer | None = None,
) -> Iterator[ModeEnv]:
    """A :class:`ModeEnv` for ``mode``; the emulator (and a server of its own) stop at the end.

    ``server``: a running :class:`LoopbackServer` to mount the emulator on (loopback mode);
    without one, loopback mode starts and stops a server of its own.
    """
    base = config or SalesforceEmulatorConfig(seed=SeedSpec(contacts=25, accounts=5))
    if mode == "in_process":
        clock = FakeClock()
        emulator = create_salesforce_app(base, clock=clock)
        faults = salesforce_faults(
            emulator.app, clock=clock, on_expire_tokens=emulator.expire_all_sessions
        )
        hub = _hub(clock, data_dir, httpx2.ASGITransport(app=faults))
        env = ModeEnv(mode, emulator, faults, clock, hub, base.instance_url, LOGIN_URL, keys)
        emulator.add_connected_app(jwt_app(keys))
        try:
            yield env
        finally:
            emulator.close()
        return
    if server is None:
        with (
            LoopbackServer().running() as own,
            mode_env(mode, keys, data_dir, config, server=own) as env,
        ):
            yield env
        return
    url = server.url
    emulator = create_salesforce_app(replace(base, instance_url=url), clock=system_clock)
    emulator.add_connected_app(jwt_app(keys))
    faults = salesforce_faults(
        emulator.app, clock=system_clock, on_expire_tokens=emulator.expire_all_sessions
    )
    recording = RecordingClock()
    hub = _hub(recording, data_dir, None)
    server.app = faults
    try:
        yield ModeEnv(mode, emulator, faults, recording, hub, url, url, keys)
    finally:
        server.app = None
        emulator.close()

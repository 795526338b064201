"""Fixtures for the Salesforce adapter tests: an emulated org in process, a Hub around it.

``sf_env`` builds everything on one :class:`FakeClock` (waits are instant) with a connected app
that accepts the JWT bearer flow (a fresh RSA key per test session). ``sf_env.open(...)`` opens a
connected :class:`SalesforceConnector` for tenant ``acme-corp``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from connectors.adapters.salesforce import SalesforceConnector
from connectors.auth import InMemoryLockProvider, InMemoryTokenStore, TokenManager
from connectors.clock import FakeClock
from connectors.config.settings import Settings
from connectors.hub import Hub
from connectors.registry import AdapterRegistry
from connectors.secrets import Secret
from connectors.testing.salesforce import (
    ConnectedApp,
    SalesforceEmulator,
    SalesforceEmulatorConfig,
    SeedSpec,
    create_salesforce_app,
)
from connectors.testing.salesforce.config import DEFAULT_APP, DEFAULT_USER

T = TypeVar("T")
JWT_APP_KEY = "3MVG9jwtConsumerKey"


def run(factory: Callable[[], Awaitable[T]]) -> T:
    """Run an async test body on a fresh event loop."""

    async def main() -> T:
        return await factory()

    return asyncio.run(main())


@dataclass(frozen=True)
class KeyPair:
    private_pem: str
    certificate_pem: str


@pytest.fixture(scope="session")
def key_pair() -> KeyPair:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "connectors-test")])
    now = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return KeyPair(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        cert.public_bytes(serialization.Encoding.PEM).decode(),
    )


def jwt_app(keys: KeyPair) -> ConnectedApp:
    return ConnectedApp(
        consumer_key=JWT_APP_KEY,
        public_key_pem=keys.certificate_pem,
        scopes=("api", "refresh_token"),
    )


def run_closing(hub: Hub, factory: Callable[[], Awaitable[T]]) -> T:
    """Run ``factory()`` on a fresh loop and close ``hub``'s services on that loop at the end."""

    async def main() -> T:
        try:
            return await factory()
        finally:
            await hub.aclose()

    return asyncio.run(main())


@dataclass
class SfEnv:
    """An emulated org, its clock, and a Hub whose ``salesforce`` transport reaches it."""

    emulator: SalesforceEmulator
    clock: FakeClock
    keys: KeyPair
    tokens: TokenManager
    app: Any
    data_dir: Path
    hub: Hub = field(init=False)

    def __post_init__(self) -> None:
        self.hub = self.make_hub(self.app)

    def make_hub(self, app: Any) -> Hub:
        registry = AdapterRegistry(discover=False, builtins={})
        registry.register(SalesforceConnector)
        return Hub(
            Settings.load({}, data_dir=self.data_dir),
            registry=registry,
            transports={"salesforce": httpx2.ASGITransport(app=app)},
            tokens=self.tokens,
            clock=self.clock,
        )

    def jwt_settings(self, **overrides: object) -> dict[str, object]:
        settings: dict[str, object] = {
            "client_id": JWT_APP_KEY,
            "username": DEFAULT_USER.username,
            "private_key": Secret(self.keys.private_pem, name="salesforce/private_key"),
            "login_url": "https://login.salesforce.com",
            "bulk_poll_interval": 0.5,
        }
        settings.update(overrides)
        return settings

    def password_settings(self, **overrides: object) -> dict[str, object]:
        settings: dict[str, object] = {
            "auth": "password",
            "client_id": DEFAULT_APP.consumer_key,
            "client_secret": Secret(DEFAULT_APP.consumer_secret),
            "username": DEFAULT_USER.username,
            "password": Secret(DEFAULT_USER.password),
        }
        settings.update(overrides)
        return settings

    def run(self, factory: Callable[[], Awaitable[T]]) -> T:
        """Run an async test body on a fresh loop; the Hub's services are closed at the end."""
        return run_closing(self.hub, factory)

    @asynccontextmanager
    async def open(
        self, settings: Mapping[str, object] | None = None, *, hub: Hub | None = None
    ) -> AsyncIterator[SalesforceConnector]:
        # Audit and access have their own tests; here they would only add a database.
        conn = (hub or self.hub).connector(
            "salesforce",
            tenant_id="acme-corp",
            settings=self.jwt_settings() if settings is None else settings,
        )
        conn.runtime.audit = None
        conn.runtime.access = None
        assert isinstance(conn, SalesforceConnector)
        async with conn:
            yield conn


def make_env(
    keys: KeyPair, data_dir: Path, config: SalesforceEmulatorConfig | None = None
) -> SfEnv:
    clock = FakeClock()
    base = config or SalesforceEmulatorConfig(seed=SeedSpec(contacts=25, accounts=5))
    emulator = create_salesforce_app(base, clock=clock)
    emulator.add_connected_app(jwt_app(keys))
    tokens = TokenManager(InMemoryTokenStore(), InMemoryLockProvider(clock=clock), clock=clock)
    return SfEnv(emulator, clock, keys, tokens, emulator.app, data_dir)


@pytest.fixture
def sf_env(key_pair: KeyPair, tmp_path: Path) -> Iterator[SfEnv]:
    env = make_env(key_pair, tmp_path)
    try:
        yield env
    finally:
        env.emulator.close()

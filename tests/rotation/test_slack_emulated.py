"""Slack client-secret rotation on the emulator under continuous traffic, rollback, bot tokens."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx2

from connectors.adapters.slack import SlackConnector
from connectors.auth.tokens import TokenSet
from connectors.clock import FakeClock
from connectors.config.definition import ConnectorDefinition
from connectors.config.settings import Settings
from connectors.hub import Hub
from connectors.registry import AdapterRegistry
from connectors.rotation import RotationEngine, RotationPolicy, RotatorRegistry
from connectors.rotation.slack_emulated import (
    SlackClientSecretVerifier,
    SlackEmulatorRotator,
    refresh_bot_token,
)
from connectors.secrets.secret import Secret
from connectors.state.memory import MemoryStateBackend
from connectors.testing.slack import SlackEmulator, SlackEmulatorConfig, create_slack_app
from tests.rotation.test_engine import Capture, Traffic

TENANT = "acme"
BASE = "https://slack.test/api/"
APP = "slack-app"
BOT = "slack-bot"
POLICY = RotationPolicy(
    APP, "client_secret", connector="slack", field="client_secret", rotator="slack-emulator"
)


class World:
    """The emulator (rotating tokens), a Hub with the Slack connector on it, and the engine."""

    def __init__(self, tmp_path: Path) -> None:
        self.clock = FakeClock()
        config = SlackEmulatorConfig(token_rotation=True, rate_limits=False)
        self.emulator: SlackEmulator = create_slack_app(config, clock=self.clock)
        registry = AdapterRegistry(discover=False, builtins={})
        registry.register(SlackConnector)
        settings = {
            "base_url": BASE,
            "oauth_credential": BOT,
            "client_id": config.client_id,
            "client_secret": f"${{secret:{APP}#client_secret}}",
            "rate_limits": False,
        }
        self.hub = Hub(
            Settings.load({}, data_dir=tmp_path / "data", dev_mode=True),
            registry=registry,
            definitions={
                "slack": ConnectorDefinition.model_validate({"type": "slack", "settings": settings})
            },
            transports={"slack": httpx2.ASGITransport(app=self.emulator.app)},
            state=MemoryStateBackend(),
            clock=self.clock,
            enforce_access=False,
        )
        self.audit = Capture()

    async def start(self) -> RotationEngine:
        await self.hub.start()
        config = self.emulator.config
        await self.hub.services.credentials.put(
            TENANT,
            APP,
            {"client_id": config.client_id, "client_secret": config.client_secret},
            actor="t",
        )
        issued = self.emulator.issue_token(rotating=True)
        assert issued.refresh_token is not None
        assert issued.expires_in is not None
        token = TokenSet(
            access_token=Secret(issued.access_token),
            refresh_token=Secret(issued.refresh_token),
            expires_at=self.clock.time() + issued.expires_in,
            scopes=issued.scopes,
        )
        await self.hub.tokens.install(TENANT, BOT, token)
        engine = RotationEngine.for_hub(self.hub, rotators=RotatorRegistry(discover=False))
        engine.audit = self.audit
        engine.verifier = SlackClientSecretVerifier(self.hub, BOT)
        return engine

    async def auth_test(self) -> None:
        async with self.hub.open("slack", tenant_id=TENANT) as conn:
            assert isinstance(conn, SlackConnector)
            await conn.auth_test()

    async def refresh(self) -> None:
        """A bot-token refresh through the connector's own grant (its resolved client secret)."""
        async with self.hub.open("slack", tenant_id=TENANT) as conn:
            assert isinstance(conn, SlackConnector)
            stored = await self.hub.tokens.store.load(TENANT, BOT)
            assert stored is not None
            self.hub.tokens.forget(TENANT, BOT)
            await self.hub.tokens.refresh(TENANT, BOT, stale=stored.token)
            await conn.auth_test()

    async def stored_secret(self) -> str:
        cred = await self.hub.services.credentials.get(TENANT, APP, fresh=True)
        return cred.secret("client_secret").reveal()

    async def close(self) -> None:
        await self.hub.aclose()
        for thread in threading.enumerate():  # aiosqlite workers must not outlive the loop
            if "_connection_worker_thread" in thread.name:
                await asyncio.to_thread(thread.join, 5)


async def _oauth_status(emulator: SlackEmulator, secret: str) -> str:
    """What oauth.v2.access says about ``secret`` (a bogus refresh token, so nothing is burnt)."""
    transport = httpx2.ASGITransport(app=emulator.app)
    async with httpx2.AsyncClient(transport=transport, base_url=BASE) as client:
        answer = await client.post(
            "oauth.v2.access",
            data={
                "grant_type": "refresh_token",
                "refresh_token": "xoxe-1-nope",
                "client_id": emulator.config.client_id,
                "client_secret": secret,
            },
        )
    return str(answer.json()["error"])


def test_client_secret_rotation_under_traffic_keeps_token_refreshes_working(
    tmp_path: Path,
) -> None:
    world = World(tmp_path)
    old = world.emulator.config.client_secret

    async def main() -> None:
        engine = await world.start()
        callers = Traffic(world.auth_test, workers=3)
        refreshes = Traffic(world.refresh, workers=1)
        await callers.settle()
        await refreshes.settle()
        result = await engine.rotate(TENANT, POLICY)
        assert result.outcome == "committed", result.detail
        new = await world.stored_secret()
        assert new != old
        assert await _oauth_status(world.emulator, old) == "invalid_refresh_token", "still valid"
        await refreshes.settle()
        await callers.settle()
        revoked = await engine.revoke_old(TENANT, POLICY, early=True)
        assert revoked.outcome == "revoked"
        await refreshes.settle()
        await callers.settle()
        await callers.stop()
        await refreshes.stop()
        assert callers.failures == []
        assert refreshes.failures == []
        assert refreshes.calls >= 9
        assert callers.calls > 20
        assert await _oauth_status(world.emulator, old) == "bad_client_secret"
        assert await _oauth_status(world.emulator, new) == "invalid_refresh_token"
        assert world.emulator.default_app.client_secret == new
        stored = await world.hub.services.credentials.get(TENANT, APP, fresh=True)
        assert set(stored.fields) == {"client_id", "client_secret"}
        assert world.audit.kinds() == [
            "rotation.started",
            "rotation.verified",
            "rotation.committed",
            "rotation.old_revoked",
        ]
        await world.close()

    asyncio.run(main())


def test_a_new_client_secret_that_fails_verification_is_rolled_back_and_cancelled(
    tmp_path: Path,
) -> None:
    world = World(tmp_path)
    old = world.emulator.config.client_secret
    world.emulator.rotation.refuse_new_client_secrets = True

    async def main() -> None:
        engine = await world.start()
        before = await world.hub.services.credentials.get(TENANT, APP, fresh=True)
        result = await engine.rotate(TENANT, POLICY)
        assert result.outcome == "rolled_back"
        assert result.detail.startswith("refresh with the new secret failed"), result.detail
        stored = await world.hub.services.credentials.get(TENANT, APP, fresh=True)
        assert stored.secret("client_secret").reveal() == old
        assert set(stored.fields) == {"client_id", "client_secret"}
        assert "rotation" not in stored.metadata
        assert stored.version > before.version
        assert world.emulator.default_app.client_secret == old, "cancelled at the emulator"
        assert world.emulator.rotation.previous_client_secrets == {}
        assert world.audit.kinds() == ["rotation.started", "rotation.rolled_back"]
        assert world.audit.events[-1].outcome == "failure"
        await world.refresh()  # the bot token was not burnt and the old secret still refreshes
        await world.close()

    asyncio.run(main())


def test_bot_token_rotation_forces_a_refresh_and_proves_it_with_auth_test(
    tmp_path: Path,
) -> None:
    world = World(tmp_path)

    async def main() -> None:
        await world.start()
        async with world.hub.open("slack", tenant_id=TENANT):
            pass  # registers the connector's refresh grant with the token manager
        first = await world.hub.tokens.store.load(TENANT, BOT)
        assert first is not None
        team = await refresh_bot_token(
            world.hub.tokens,
            TENANT,
            BOT,
            base_url=BASE,
            transport=httpx2.ASGITransport(app=world.emulator.app),
        )
        after = await world.hub.tokens.store.load(TENANT, BOT)
        assert after is not None
        assert team == "T0001"
        assert after.version == first.version + 1
        assert not after.token.same_access_token(first.token)
        assert world.emulator.calls["oauth.v2.access"] == 1
        await world.close()

    asyncio.run(main())


def test_the_registry_knows_the_slack_emulator_rotators() -> None:
    registry = RotatorRegistry(discover=False)
    client = registry.get("slack-emulator")
    signing = registry.get("slack-emulator-signing")
    assert isinstance(client, SlackEmulatorRotator)
    assert isinstance(signing, SlackEmulatorRotator)
    assert (client.which, signing.which) == ("client_secret", "signing_secret")

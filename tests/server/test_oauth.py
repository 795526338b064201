"""OAuth connect end to end against the Salesforce and Slack emulators; state tampering."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx2
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.adapters.salesforce import SalesforceConnector
from connectors.adapters.slack import SlackConnector
from connectors.clock import FakeClock
from connectors.config.definition import ConnectorDefinition
from connectors.config.settings import Settings
from connectors.hub import Hub
from connectors.registry import AdapterRegistry
from connectors.secrets.secret import Secret
from connectors.server.oauth import PendingConnects
from connectors.server.settings import ServerSettings
from connectors.testing.salesforce import (
    ConnectedApp,
    SalesforceEmulatorConfig,
    create_salesforce_app,
)
from connectors.testing.salesforce.config import DEFAULT_USER
from connectors.testing.slack import SlackEmulator, SlackEmulatorConfig
from tests.server._support import Env, setup_env

CALLBACK = "http://testserver/oauth/callback"
SF = "http://sf.test"
SF_APP = ConnectedApp(
    consumer_key="3MVG9connectKey",
    consumer_secret="connect-consumer-secret",
    redirect_uris=(CALLBACK,),
    auto_approve_user=DEFAULT_USER.username,
    require_pkce=True,
)


class World:
    def __init__(self, tmp_path: Path, clock: FakeClock | None) -> None:
        self.salesforce = create_salesforce_app(
            SalesforceEmulatorConfig(instance_url=SF, login_url=SF, connected_apps=(SF_APP,))
        )
        self.slack = SlackEmulator(SlackEmulatorConfig(token_rotation=True))
        self.sf_transport = httpx2.ASGITransport(app=self.salesforce.app)
        self.slack_transport = httpx2.ASGITransport(app=self.slack.app)
        registry = AdapterRegistry(discover=False, builtins={})
        registry.register(SalesforceConnector)
        registry.register(SlackConnector)
        definitions = {
            "salesforce": ConnectorDefinition.model_validate(
                {
                    "type": "salesforce",
                    "settings": {
                        "client_id": SF_APP.consumer_key,
                        "client_secret": "${secret:sf_client_secret}",
                        "login_url": SF,
                    },
                }
            ),
            "slack": ConnectorDefinition.model_validate(
                {
                    "type": "slack",
                    "settings": {
                        "base_url": "http://slack.test/api/",
                        "authorize_url": "http://slack.test/oauth/v2/authorize",
                        "client_id": self.slack.config.client_id,
                        "client_secret": "${secret:slack_client_secret}",
                        "oauth_credential": "slack",
                        "install_scopes": ["chat:write", "channels:read"],
                    },
                }
            ),
        }
        extra = {"clock": clock} if clock is not None else {}
        self.hub = Hub(
            Settings.load({}, data_dir=tmp_path / "data", dev_mode=True),
            definitions=definitions,
            registry=registry,
            transports={"salesforce": self.sf_transport, "slack": self.slack_transport},
            **extra,  # type: ignore[arg-type]
        )

    async def env(self) -> Env:
        env = await setup_env(
            self.hub,
            ServerSettings(public_url="http://testserver", probe_interval=None),
        )
        for tenant in ("acme", "globex"):
            await self.hub.services.credentials.put(
                tenant, "sf_client_secret", {"value": SF_APP.consumer_secret}, actor="test"
            )
            await self.hub.services.credentials.put(
                tenant,
                "slack_client_secret",
                {"value": self.slack.config.client_secret},
                actor="test",
            )
        return env

    def provider(self, url: str) -> httpx2.AsyncClient:
        transport = self.sf_transport if url.startswith(SF) else self.slack_transport
        return httpx2.AsyncClient(transport=transport)


def scenario(
    tmp_path: Path, body: Callable[[World, Env], Awaitable[None]], clock: FakeClock | None = None
) -> None:
    async def main() -> None:
        world = World(tmp_path, clock)
        env = await world.env()
        try:
            await body(world, env)
        finally:
            await world.hub.aclose()
            world.salesforce.close()

    asyncio.run(main())


async def authorize(world: World, env: Env, connector: str) -> str:
    """Start the connect as acme's admin, let the emulator approve; the callback path+query."""
    async with env.client(env.token("acme", "admin")) as admin:
        started = await admin.get(f"/api/connectors/{connector}/oauth/start")
        assert started.status_code == 200, started.text
        url = started.json()["authorize_url"]
    query = parse_qs(urlsplit(url).query)
    if connector == "salesforce":
        assert query["code_challenge_method"] == ["S256"]
        assert len(query["code_challenge"][0]) == 43
    async with world.provider(url) as provider:
        approved = await provider.get(url)
    assert approved.status_code == 302, approved.text
    location = approved.headers["location"]
    assert location.startswith(CALLBACK)
    return location[len("http://testserver") :]


def test_salesforce_connect_stores_the_token_and_audits(tmp_path: Path) -> None:
    async def body(world: World, env: Env) -> None:
        callback = await authorize(world, env, "salesforce")
        async with env.client() as browser:  # no token: the signed state authenticates
            done = await browser.get(callback)
        assert done.status_code == 200, done.text
        assert "is connected for tenant acme" in done.text
        stored = {c.name: c for c in await world.hub.services.credentials.list("acme")}
        assert stored["salesforce"].metadata["kind"] == "oauth2"
        assert "api" in stored["salesforce"].metadata["scopes"]  # type: ignore[operator]
        assert "salesforce" not in {
            c.name for c in await world.hub.services.credentials.list("globex")
        }
        token = await world.hub.tokens.store.load("acme", "salesforce")
        assert token is not None
        assert token.token.refresh_token is not None
        async with env.client(env.token("acme", "admin")) as admin:
            audit = await admin.get("/api/audit?kind=oauth.connect")
        (event,) = audit.json()["events"]
        assert event["outcome"] == "success"
        assert event["actor"].startswith("api-token:")
        # The stored token works: the connector connects with it and queries.
        async with world.hub.open("salesforce", tenant_id="acme") as sf:
            assert isinstance(await sf.query("SELECT Id FROM Account LIMIT 1"), list)  # type: ignore[attr-defined]

    scenario(tmp_path, body)


def test_slack_connect_installs_a_rotating_token(tmp_path: Path) -> None:
    async def body(world: World, env: Env) -> None:
        callback = await authorize(world, env, "slack")
        async with env.client() as browser:
            done = await browser.get(callback)
        assert done.status_code == 200, done.text
        async with env.client(env.token("acme", "viewer")) as viewer:
            health = (await viewer.get("/api/connectors/slack")).json()
        assert health["auth"]["credential"] == "slack"
        assert health["auth"]["state"] == "valid"
        assert health["token_expires_at"] > world.hub.clock.time()

    scenario(tmp_path, body)


def test_a_tampered_state_is_refused_and_nothing_is_stored(tmp_path: Path) -> None:
    async def body(world: World, env: Env) -> None:
        callback = await authorize(world, env, "salesforce")
        parts = urlsplit(callback)
        query = parse_qs(parts.query)
        state = query["state"][0]
        payload, signature = state.split(".")
        # Flip the tenant inside the signed payload: the signature no longer matches.
        forged = payload[:-3] + ("x" if payload[-3] != "x" else "y") + payload[-2:]
        async with env.client() as browser:
            bad = await browser.get(
                "/oauth/callback",
                params={"state": f"{forged}.{signature}", "code": query["code"][0]},
            )
            assert bad.status_code == 400
            assert "state is invalid" in bad.text
            missing = await browser.get("/oauth/callback", params={"code": query["code"][0]})
            assert missing.status_code == 400
        assert "salesforce" not in {
            c.name for c in await world.hub.services.credentials.list("acme")
        }
        async with env.client() as browser:  # the genuine state still works once...
            assert (await browser.get(callback)).status_code == 200
            again = await browser.get(callback)  # ...and only once
            assert again.status_code == 400

    scenario(tmp_path, body)


def test_an_expired_state_is_refused(tmp_path: Path) -> None:
    clock = FakeClock(wall_start=1_800_000_000.0)

    async def body(world: World, env: Env) -> None:
        callback = await authorize(world, env, "slack")
        clock.advance(env.settings.oauth_state_lifetime + 1)
        async with env.client() as browser:
            response = await browser.get(callback)
        assert response.status_code == 400
        assert "expired" in response.text

    scenario(tmp_path, body, clock)


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=0, max_value=5))
def test_a_pending_verifier_is_taken_once(extra: int) -> None:
    clock = FakeClock()
    pending = PendingConnects(clock)
    refs = [pending.put(Secret("v" * 43), clock.time() + 60) for _ in range(extra + 1)]
    assert pending.take(refs[0]) is not None
    assert pending.take(refs[0]) is None
    clock.advance(61)
    assert all(pending.take(r) is None for r in refs[1:])

"""OAuth v2 install (authorize URL, code exchange) and token rotation through the token manager."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from connectors.adapters.slack.oauth import SlackOAuthApp, check_state
from connectors.auth import TokenSet
from connectors.errors import AuthenticationFailed, ConfigurationError, ReauthorizationRequired
from connectors.secrets import Secret


def _install_rotating_token(world):
    issued = world.emulator.issue_token(rotating=True)
    token = TokenSet(
        access_token=Secret(issued.access_token),
        refresh_token=Secret(issued.refresh_token),
        expires_at=world.clock.time() + issued.expires_in,
        scopes=issued.scopes,
    )
    return issued, token


def _oauth_calls(world):
    return [p for p in world.transport.paths() if p.endswith("oauth.v2.access")]


def test_install_url_carries_client_scopes_redirect_and_state(make_world):
    world = make_world(rotation=True)

    async def main():
        async with world.open(redirect_uri="https://app.example/cb") as slack:
            return slack.install_request(state="s-123")

    request = world.run(main())
    parts = urlsplit(request.url)
    query = parse_qs(parts.query)
    assert (parts.netloc, parts.path) == ("slack.com", "/oauth/v2/authorize")
    assert query["client_id"] == [world.emulator.config.client_id]
    assert query["state"] == ["s-123"]
    assert request.state == "s-123"
    assert query["redirect_uri"] == ["https://app.example/cb"]
    scopes = query["scope"][0].split(",")
    assert "chat:write" in scopes
    assert "files:write" in scopes


def test_install_url_gets_a_fresh_unguessable_state_each_time():
    app = SlackOAuthApp(client_id="1.2", client_secret=Secret("s3cr3t-value"))
    first, second = app.install_request(), app.install_request()
    assert first.state != second.state
    assert len(first.state) >= 24


def test_state_must_match_the_install_request():
    check_state("abc", "abc")
    for bad in ("abd", "", None):
        with pytest.raises(AuthenticationFailed) as info:
            check_state("abc", bad)
        assert info.value.provider_code == "state_mismatch"


def test_exchange_code_stores_the_rotating_token_and_the_connector_uses_it(make_world):
    world = make_world(rotation=True, token_rotation=True)
    code = world.emulator.create_oauth_code(scopes=("chat:write", "channels:read"))

    async def main():
        async with world.open() as slack:
            installed = await slack.exchange_code(code)
            posted = await slack.post_message("general", "installed!")
        stored = await world.tokens.store.load("acme", "slack-bot")
        return installed, posted, stored

    installed, posted, stored = world.run(main())
    assert installed.team_id == "T0001"
    assert installed.team_name == "Acme"
    assert installed.rotating is True
    assert installed.scopes == frozenset({"chat:write", "channels:read"})
    assert installed.credential_version == 1
    assert stored.token.access_token.reveal().startswith("xoxe.xoxb-")
    assert posted.channel == world.emulator.channel("general").id


def test_a_used_code_cannot_be_exchanged_twice(make_world):
    world = make_world(rotation=True)
    code = world.emulator.create_oauth_code()

    async def main():
        async with world.open() as slack:
            await slack.exchange_code(code)
            await slack.exchange_code(code)

    with pytest.raises(ReauthorizationRequired) as info:
        world.run(main())
    assert info.value.provider_code == "invalid_code"


def test_exchange_code_needs_client_settings(make_world):
    world = make_world(rotation=True)

    async def main():
        async with world.open(client_id=None, client_secret=None) as slack:
            await slack.exchange_code("whatever")

    with pytest.raises(ConfigurationError):
        world.run(main())


def test_token_expiring_mid_run_is_refreshed_once_and_the_run_continues(make_world):
    world = make_world(rotation=True, token_rotation=True)
    issued, token = _install_rotating_token(world)

    async def main():
        await world.tokens.install("acme", "slack-bot", token)
        async with world.open() as slack:
            for n in range(3):
                await slack.post_message("general", f"before {n}")
            assert world.emulator.expire_tokens() >= 1  # Slack expires the token mid-run
            for n in range(3):
                await slack.post_message("general", f"after {n}")
        return await world.tokens.store.load("acme", "slack-bot")

    stored = world.run(main())
    texts = [m.text for m in world.emulator.channel("general").messages]
    assert texts[-6:] == [f"before {n}" for n in range(3)] + [f"after {n}" for n in range(3)]
    assert len(_oauth_calls(world)) == 1
    assert stored.version == 2  # persisted (compare-and-swap) before use
    assert stored.token.refresh_token != Secret(issued.refresh_token)  # single-use: rotated


def test_concurrent_calls_on_an_expired_token_refresh_exactly_once(make_world):
    world = make_world(rotation=True, token_rotation=True)
    _, token = _install_rotating_token(world)

    async def main():
        await world.tokens.install("acme", "slack-bot", token)
        async with world.open() as slack:
            await slack.auth_test()
            world.emulator.expire_tokens()
            await asyncio.gather(*(slack.user_info("U00000001") for _ in range(8)))

    world.run(main())
    assert len(_oauth_calls(world)) == 1


def test_a_token_near_its_known_expiry_is_renewed_before_use(make_world):
    world = make_world(rotation=True, token_rotation=True)
    issued, token = _install_rotating_token(world)

    async def main():
        await world.tokens.install("acme", "slack-bot", token)
        async with world.open() as slack:
            await slack.auth_test()
            world.clock.advance(issued.expires_in - 30)  # inside the manager's renewal margin
            await slack.auth_test()

    world.run(main())
    assert len(_oauth_calls(world)) == 1
    assert 200 in world.transport.statuses
    assert world.transport.throttled == 0
    bodies = [r for r in world.transport.requests if r.url.path.endswith("auth.test")]
    assert len(bodies) == 2  # no rejected attempt: the renewal came first


def test_a_burnt_refresh_token_needs_reauthorisation(make_world):
    world = make_world(rotation=True, token_rotation=True)
    issued, token = _install_rotating_token(world)

    async def main():
        await world.tokens.install("acme", "slack-bot", token)
        # Someone else used the single-use refresh token: ours is now invalid.
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=world.emulator.app)) as c:
            await c.post(
                "https://slack.test/api/oauth.v2.access",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": issued.refresh_token,
                    "client_id": world.emulator.config.client_id,
                    "client_secret": world.emulator.config.client_secret,
                },
            )
        world.emulator.expire_tokens()
        async with world.open() as slack:
            await slack.auth_test()

    with pytest.raises(ReauthorizationRequired) as info:
        world.run(main())
    assert info.value.provider_code == "invalid_refresh_token"
    assert world.tokens.store.needs_reauth("acme", "slack-bot") == "invalid_refresh_token"


def test_without_an_explicit_token_manager_the_hubs_own_is_used(make_world):
    world = make_world()  # static-token world: the Hub was given no TokenManager

    async def main():
        async with world.open(
            token=None,
            oauth_credential="slack-bot",
            client_id=world.emulator.config.client_id,
            client_secret=Secret(world.emulator.config.client_secret),
        ) as slack:
            installed = await slack.exchange_code(world.emulator.create_oauth_code())
            identity = await slack.auth_test()
        stored = await world.hub.tokens.store.load("acme", "slack-bot")
        return installed, identity, stored

    installed, identity, stored = world.run(main())
    assert installed.credential_version == stored.version
    assert identity.team_id == "T0001"

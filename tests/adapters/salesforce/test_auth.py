"""Each OAuth flow against the emulated org, the stored-token connect step, and the canary."""

from __future__ import annotations

import httpx2
import pytest

from connectors.adapters.salesforce.auth import authorization_flow
from connectors.adapters.salesforce.settings import SalesforceSettings
from connectors.errors import AuthenticationFailed, ReauthorizationRequired
from connectors.secrets import Secret
from connectors.testing.capture import capture_logs
from connectors.testing.salesforce.config import DEFAULT_APP, DEFAULT_USER

from .conftest import SfEnv


def test_jwt_bearer_flow_takes_instance_url_from_the_token_response(sf_env: SfEnv) -> None:
    async def main() -> None:
        async with sf_env.open() as sf:
            assert sf.instance_url == "https://emulated.my.salesforce.com"
            assert await sf.count("Contact") == 25

    sf_env.run(main)


def test_client_credentials_flow(sf_env: SfEnv) -> None:
    settings = {
        "auth": "client_credentials",
        "client_id": DEFAULT_APP.consumer_key,
        "client_secret": Secret(DEFAULT_APP.consumer_secret),
        "login_url": "https://acme.my.salesforce.com",
    }

    async def main() -> None:
        async with sf_env.open(settings) as sf:
            assert await sf.count("Account") == 5

    sf_env.run(main)


def test_password_flow_works_and_warns_on_every_connect(sf_env: SfEnv) -> None:
    async def main() -> None:
        for _ in range(2):
            async with sf_env.open(sf_env.password_settings(credential="pw")) as sf:
                await sf.limits()

    with capture_logs() as events:
        sf_env.run(main)
    warnings = [e for e in events if e["event"] == "salesforce.password_flow_deprecated"]
    assert len(warnings) == 2


def test_web_server_flow_with_pkce_then_refresh_token_renewal(sf_env: SfEnv) -> None:
    settings = {
        "auth": "refresh_token",
        "client_id": DEFAULT_APP.consumer_key,
        "client_secret": Secret(DEFAULT_APP.consumer_secret),
        "credential": "web",
    }

    async def main() -> None:
        parsed = SalesforceSettings.from_mapping(settings, instance="salesforce")
        transport = httpx2.ASGITransport(app=sf_env.emulator.app)
        async with httpx2.AsyncClient(transport=transport) as client:
            flow = authorization_flow(
                parsed, client, sf_env.clock, redirect_uri=DEFAULT_APP.redirect_uris[0]
            )
            start = flow.authorization_url()
            assert "code_challenge_method=S256" in start.url
            answer = await client.get(start.url)
            code = httpx2.URL(answer.headers["location"]).params["code"]
            token = await flow.exchange_code(code, start.code_verifier)
        assert token.refresh_token is not None
        await sf_env.tokens.install("acme-corp", "web", token)
        async with sf_env.open(settings) as sf:
            sf_env.emulator.expire_all_sessions()
            assert await sf.count("Contact") == 25  # renewed with the stored refresh token

    sf_env.run(main)


def test_refresh_token_from_settings_and_a_revoked_one_needs_reauthorisation(
    sf_env: SfEnv,
) -> None:
    grant = sf_env.emulator.sessions.issue_refresh(
        user_id=sf_env.emulator.admin_user_id,
        username=DEFAULT_USER.username,
        consumer_key=DEFAULT_APP.consumer_key,
        scopes=("api", "refresh_token"),
    )
    settings = {
        "client_id": DEFAULT_APP.consumer_key,
        "client_secret": Secret(DEFAULT_APP.consumer_secret),
        "refresh_token": Secret(grant.token),
        "credential": "rt",
    }

    async def main() -> None:
        async with sf_env.open(settings) as sf:
            assert await sf.count("Account") == 5
        sf_env.emulator.sessions.revoke(grant.token)
        with pytest.raises(ReauthorizationRequired):
            async with sf_env.open({**settings, "credential": "rt2"}):
                pass

    sf_env.run(main)


def test_an_unapproved_jwt_user_fails_to_connect(sf_env: SfEnv) -> None:
    async def main() -> None:
        with pytest.raises(AuthenticationFailed):
            async with sf_env.open(sf_env.jwt_settings(username="nobody@example.com")):
                pass

    sf_env.run(main)


def test_canary_no_key_secret_or_token_in_logs_or_errors(sf_env: SfEnv) -> None:
    errors: list[str] = []

    async def main() -> None:
        async with sf_env.open() as sf:
            sf_env.emulator.expire_all_sessions()
            await sf.count("Contact")
            try:
                await sf.create("Lead", {"FirstName": "x"})
            except Exception as exc:
                errors.append(str(exc) + repr(exc))
        try:
            async with sf_env.open(sf_env.password_settings(password=Secret("wrong-pass-9"))):
                pass
        except Exception as exc:
            errors.append(str(exc) + repr(exc))
        async with sf_env.open(sf_env.password_settings(credential="pw")) as sf:
            errors.append(repr(sf.settings) + repr(sf.http))

    with capture_logs() as events:
        sf_env.run(main)
    text = "\n".join(str(e) for e in events) + "\n".join(errors)
    secrets = [
        sf_env.keys.private_pem.splitlines()[1],
        DEFAULT_APP.consumer_secret,
        DEFAULT_USER.password,
        "wrong-pass-9",
        *sf_env.emulator.sessions.sessions,
    ]
    assert len(secrets) > 4
    for value in secrets:
        assert value not in text

"""Canary: no token, secret, key or assertion value in any repr, str, error or log line of auth."""

from __future__ import annotations

import asyncio
import logging

import httpx2
import pytest
import structlog
from joserfc.jwk import RSAKey

from connectors.auth import (
    ApiKeyAuth,
    BasicAuth,
    BearerAuth,
    ClientCredentials,
    InMemoryLockProvider,
    JwtBearerGrant,
    ManagedTokenAuth,
    PasswordGrant,
    RefreshEvent,
    RefreshTokenGrant,
    TokenEndpoint,
    TokenManager,
    TokenSet,
)
from connectors.clock import FakeClock
from connectors.errors import AuthenticationFailed, ReauthorizationRequired
from connectors.secrets import Secret

from ._support import API_URL, TOKEN_URL, RecordingStore, form_of, json_response

CANARIES = {
    "access": "CANARY-access-9f1c2b",
    "refresh": "CANARY-refresh-4e7a0d",
    "rotated_access": "CANARY-access2-77aa01",
    "rotated_refresh": "CANARY-refresh2-55bb02",
    "client_secret": "CANARY-client-secret-31d9",
    "password": "CANARY-password-8c2e",
    "api_key": "CANARY-api-key-0b6f",
}
RSA_PEM = RSAKey.generate_key(2048).as_pem(private=True).decode()


def leaks(text: str) -> list[str]:
    found = [name for name, value in CANARIES.items() if value in text]
    if "PRIVATE KEY" in text or RSA_PEM[40:80] in text:
        found.append("rsa_key")
    return found


def test_no_secret_value_in_reprs_errors_or_logs(caplog):
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    events: list[RefreshEvent] = []
    assertions: list[str] = []

    async def hook(event: RefreshEvent) -> None:
        events.append(event)

    def token_endpoint(request: httpx2.Request) -> httpx2.Response:
        form = form_of(request)
        if form["grant_type"] == "refresh_token":
            if form["refresh_token"] == CANARIES["refresh"]:
                return json_response(
                    200,
                    {
                        "access_token": CANARIES["rotated_access"],
                        "refresh_token": CANARIES["rotated_refresh"],
                        "expires_in": 3600,
                        "id_token": CANARIES["rotated_access"],
                    },
                )
            # A provider that echoes the refresh token it rejected.
            return json_response(
                400,
                {"error": "invalid_grant", "error_description": f"bad {form['refresh_token']}"},
            )
        assertions.append(form.get("assertion", ""))
        return json_response(401, {"error": "invalid_client", "error_description": "nope"})

    def api(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/token"):
            return token_endpoint(request)
        token = request.headers.get("Authorization", "")
        if CANARIES["rotated_access"] in token:
            return httpx2.Response(200, json={"ok": True})
        return httpx2.Response(401, json=[{"errorCode": "INVALID_SESSION_ID", "message": token}])

    async def main() -> None:
        clock = FakeClock()
        store = RecordingStore()
        async with httpx2.AsyncClient(transport=httpx2.MockTransport(api)) as client:
            creds = ClientCredentials("cid", Secret(CANARIES["client_secret"]))
            endpoint = TokenEndpoint(TOKEN_URL, client=client, credentials=creds, clock=clock)
            manager = TokenManager(
                store, InMemoryLockProvider(clock=clock), clock=clock, on_refresh=hook
            )
            grant = RefreshTokenGrant(endpoint)
            manager.register("t", "c", grant)
            seed = TokenSet(
                access_token=Secret(CANARIES["access"]), refresh_token=Secret(CANARIES["refresh"])
            )
            await manager.install("t", "c", seed)
            auth = ManagedTokenAuth(manager, "t", "c")
            response = await client.get(API_URL, auth=auth)
            assert response.status_code == 200
            fresh = await manager.get_token("t", "c")
            texts.extend(
                [repr(x) for x in (manager, store, grant, endpoint, creds, auth, seed, fresh)]
                + [str(fresh), repr(await store.load("t", "c")), repr(fresh.extra)]
            )
            # invalid_grant with an echoed token: the error text must not carry it.
            stale_store = RecordingStore()
            other = TokenManager(
                stale_store, InMemoryLockProvider(clock=clock), clock=clock, on_refresh=hook
            )
            await other.install("t", "c", seed)
            await stale_store.save(
                "t",
                "c",
                TokenSet(
                    access_token=Secret(CANARIES["access"]),
                    refresh_token=Secret(CANARIES["rotated_refresh"]),
                ),
                expected_version=1,
            )
            other.forget("t", "c")
            with pytest.raises(ReauthorizationRequired) as info:
                await other.refresh("t", "c", stale=seed, grant=grant)
            texts.extend([str(info.value), repr(info.value), repr(info.value.context())])
            # A JWT bearer grant whose assertion is refused.
            jwt_grant = JwtBearerGrant.salesforce(
                endpoint, client_id="cid", username="u@example.test", private_key=Secret(RSA_PEM)
            )
            with pytest.raises(AuthenticationFailed) as denied:
                await jwt_grant.obtain(None)
            texts.extend([str(denied.value), repr(jwt_grant)])
            password = PasswordGrant(
                endpoint, username="alice", password=Secret(CANARIES["password"])
            )
            texts.append(repr(password))
        for flow in (
            ApiKeyAuth(Secret(CANARIES["api_key"])),
            BasicAuth("alice", Secret(CANARIES["password"])),
            BearerAuth(Secret(CANARIES["access"])),
        ):
            texts.append(repr(flow))

    with structlog.testing.capture_logs() as logs:
        asyncio.run(main())
    texts.append(repr(logs))
    texts.extend(repr(e) for e in events)
    texts.append(caplog.text)
    assert logs, "expected refresh log events"
    assert {e.outcome for e in events} >= {"refreshed", "needs_reauth"}
    assert assertions
    assert assertions[0].count(".") == 2
    for text in texts:
        assert leaks(text) == [], text
        assert assertions[0] not in text

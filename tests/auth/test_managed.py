"""ManagedTokenAuth: bearer from the manager, one single-flight refresh and retry on rejection."""

from __future__ import annotations

import asyncio

import httpx2
import pytest

from connectors.auth import (
    SALESFORCE_INVALID_SESSION,
    SLACK_INVALID_AUTH,
    UNAUTHORIZED,
    InMemoryLockProvider,
    ManagedTokenAuth,
    TokenManager,
    TokenSet,
)
from connectors.clock import FakeClock
from connectors.errors import AuthenticationFailed

from ._support import (
    API_URL,
    BearerApi,
    RecordingStore,
    TokenServer,
    json_response,
    refresh_grant,
    router,
)

T, C = "acme-corp", "salesforce"


async def setup(server: TokenServer, clock: FakeClock, store: RecordingStore | None = None):
    token_client = httpx2.AsyncClient(transport=router(server))
    manager = TokenManager(
        store or RecordingStore(), InMemoryLockProvider(clock=clock), clock=clock
    )
    manager.register(T, C, refresh_grant(token_client, clock))
    return manager, token_client


def test_200_concurrent_calls_with_a_rejected_token_make_one_token_request_and_all_succeed():
    async def main():
        clock, server = FakeClock(), TokenServer(expires_in=None)
        api = BearerApi(server)
        manager, token_client = await setup(server, clock)
        seed = server.seed()
        await manager.install(T, C, seed)
        server.expire_access()  # the provider no longer accepts the stored token
        auth = ManagedTokenAuth(manager, T, C, check=SALESFORCE_INVALID_SESSION)
        async with token_client, httpx2.AsyncClient(transport=router(server, api)) as client:
            responses = await asyncio.gather(*(client.get(API_URL, auth=auth) for _ in range(200)))
        assert server.count == 1
        assert all(r.status_code == 200 for r in responses)
        old = seed.access_token.reveal()
        assert api.seen.count(old) >= 1  # the old token really was rejected
        assert len(api.seen) == 200 + api.seen.count(old)

    asyncio.run(main())


def test_200_concurrent_calls_with_a_known_expired_token_refresh_once_before_sending():
    async def main():
        clock, server = FakeClock(), TokenServer(expires_in=3600)
        api = BearerApi(server)
        manager, token_client = await setup(server, clock)
        seed = server.seed()
        expired = TokenSet(
            access_token=seed.access_token,
            refresh_token=seed.refresh_token,
            expires_at=clock.time() - 1,
        )
        await manager.install(T, C, expired)
        server.expire_access()
        auth = ManagedTokenAuth(manager, T, C)
        async with token_client, httpx2.AsyncClient(transport=router(server, api)) as client:
            responses = await asyncio.gather(*(client.get(API_URL, auth=auth) for _ in range(200)))
        assert server.count == 1
        assert all(r.status_code == 200 for r in responses)
        assert seed.access_token.reveal() not in api.seen
        assert len(api.seen) == 200

    asyncio.run(main())


def test_a_401_causes_exactly_one_refresh_and_one_retry_with_the_new_token():
    async def main():
        clock, server = FakeClock(), TokenServer()
        log: list[tuple[str, str]] = []
        api = BearerApi(server, log=log)
        manager, token_client = await setup(server, clock, RecordingStore(log=log))
        seed = server.seed()
        await manager.install(T, C, seed)
        server.expire_access()
        log.clear()
        async with token_client, httpx2.AsyncClient(transport=router(server, api)) as client:
            response = await client.post(
                API_URL, json={"Name": "Acme"}, auth=ManagedTokenAuth(manager, T, C)
            )
        assert response.status_code == 200
        assert server.count == 1
        new = server.on_issue[-1]
        assert api.seen == [seed.access_token.reveal(), new]
        # The rotated refresh token was persisted before the API saw the new access token.
        save_at = next(i for i, (k, v) in enumerate(log) if k == "save" and new in v)
        assert save_at < log.index(("api", new))
        assert f"|{server.valid_refresh}|" in log[save_at][1]

    asyncio.run(main())


def test_the_retried_request_carries_the_same_body():
    async def main():
        clock, server = FakeClock(), TokenServer()
        bodies: list[bytes] = []
        api = BearerApi(server)

        async def handle(request: httpx2.Request) -> httpx2.Response:
            if request.url.path.endswith("/token"):
                return await server.handle(request)
            bodies.append(request.content)
            return await api.handle(request)

        manager, token_client = await setup(server, clock)
        seed = server.seed()
        await manager.install(T, C, seed)
        server.expire_access()
        async with (
            token_client,
            httpx2.AsyncClient(transport=httpx2.MockTransport(handle)) as client,
        ):
            response = await client.post(
                API_URL, content=b'{"a": 1}', auth=ManagedTokenAuth(manager, T, C)
            )
        assert response.status_code == 200
        assert bodies == [b'{"a": 1}', b'{"a": 1}']

    asyncio.run(main())


def test_a_second_401_raises_authentication_failed_after_one_refresh():
    async def main():
        clock, server = FakeClock(), TokenServer()
        api_calls = 0

        async def handle(request: httpx2.Request) -> httpx2.Response:
            nonlocal api_calls
            if request.url.path.endswith("/token"):
                return await server.handle(request)
            api_calls += 1
            return json_response(
                401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
            )

        manager, token_client = await setup(server, clock)
        await manager.install(T, C, server.seed())
        auth = ManagedTokenAuth(manager, T, C, check=SALESFORCE_INVALID_SESSION, connector="sf")
        async with (
            token_client,
            httpx2.AsyncClient(transport=httpx2.MockTransport(handle)) as client,
        ):
            with pytest.raises(AuthenticationFailed) as info:
                await client.get(API_URL, auth=auth)
        assert server.count == 1
        assert api_calls == 2
        assert info.value.status == 401
        assert info.value.provider_code == "INVALID_SESSION_ID"
        assert info.value.tenant == T
        assert info.value.connector == "sf"

    asyncio.run(main())


def test_salesforce_session_not_valid_for_rest_is_not_refreshed():
    async def main():
        clock, server = FakeClock(), TokenServer()

        def handle(request: httpx2.Request) -> httpx2.Response:
            return json_response(
                401,
                [
                    {
                        "message": "This session is not valid for use with the REST API",
                        "errorCode": "INVALID_SESSION_ID",
                    }
                ],
            )

        manager, token_client = await setup(server, clock)
        await manager.install(T, C, server.seed())
        auth = ManagedTokenAuth(manager, T, C, check=SALESFORCE_INVALID_SESSION)
        async with (
            token_client,
            httpx2.AsyncClient(transport=httpx2.MockTransport(handle)) as client,
        ):
            response = await client.get(API_URL, auth=auth)
        assert response.status_code == 401  # left to the adapter's classifier
        assert server.count == 0

    asyncio.run(main())


@pytest.mark.parametrize("error", ["invalid_auth", "token_expired"])
def test_slack_http_200_invalid_auth_triggers_one_refresh_and_retry(error):
    async def main():
        clock, server = FakeClock(), TokenServer()

        async def handle(request: httpx2.Request) -> httpx2.Response:
            if request.url.path.endswith("/token"):
                return await server.handle(request)
            token = request.headers["Authorization"].removeprefix("Bearer ")
            if token in server.valid_access:
                return json_response(200, {"ok": True, "channel": "C1"})
            return json_response(200, {"ok": False, "error": error})

        manager, token_client = await setup(server, clock)
        await manager.install(T, C, server.seed())
        server.expire_access()
        auth = ManagedTokenAuth(manager, T, C, check=SLACK_INVALID_AUTH)
        assert auth.requires_response_body
        async with (
            token_client,
            httpx2.AsyncClient(transport=httpx2.MockTransport(handle)) as client,
        ):
            response = await client.post(API_URL, auth=auth)
        assert response.json() == {"ok": True, "channel": "C1"}
        assert server.count == 1

    asyncio.run(main())


def test_slack_check_ignores_other_errors_and_401_check_does_not_need_bodies():
    assert not SLACK_INVALID_AUTH(
        httpx2.Response(200, json={"ok": False, "error": "channel_not_found"})
    )
    assert not SLACK_INVALID_AUTH(httpx2.Response(200, json={"ok": True}))
    assert not SLACK_INVALID_AUTH(httpx2.Response(429, json={"ok": False, "error": "ratelimited"}))
    assert SALESFORCE_INVALID_SESSION(httpx2.Response(401, content=b"<html>"))
    assert not SALESFORCE_INVALID_SESSION(
        httpx2.Response(401, json=[{"errorCode": "INSUFFICIENT_ACCESS", "message": "no"}])
    )
    assert SALESFORCE_INVALID_SESSION(
        httpx2.Response(401, json={"exceptionCode": "InvalidSessionId", "exceptionMessage": "x"})
    )
    assert not UNAUTHORIZED.needs_body
    assert UNAUTHORIZED(httpx2.Response(401))
    assert not UNAUTHORIZED(httpx2.Response(403))


def test_managed_auth_refuses_a_sync_client():
    clock = FakeClock()
    manager = TokenManager(RecordingStore(), InMemoryLockProvider(clock=clock), clock=clock)
    auth = ManagedTokenAuth(manager, T, C)
    with (
        httpx2.Client(transport=httpx2.MockTransport(lambda r: httpx2.Response(200))) as client,
        pytest.raises(TypeError, match="AsyncClient"),
    ):
        client.get(API_URL, auth=auth)

"""Dashboard sessions: login, cookie flags, CSRF, login rate limit, logout, revocation."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx2

from connectors.clock import FakeClock
from connectors.server.auth import SESSION_COOKIE, is_public
from tests.server._support import Env, make_server_hub, setup_env

Scenario = Callable[[Env, FakeClock], Awaitable[None]]


def scenario(tmp_path: Path, body: Scenario) -> None:
    async def main() -> None:
        clock = FakeClock()
        hub = make_server_hub(tmp_path, clock=clock)
        env = await setup_env(hub)
        try:
            await body(env, clock)
        finally:
            await hub.aclose()

    asyncio.run(main())


async def login(client: httpx2.AsyncClient, token: str) -> httpx2.Response:
    form = await client.get("/login")
    nonce = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert nonce is not None
    return await client.post("/login", data={"token": token, "csrf_token": nonce.group(1)})


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def test_login_opens_an_httponly_samesite_strict_session(tmp_path: Path) -> None:
    async def body(env: Env, clock: FakeClock) -> None:
        async with env.client() as client:
            response = await login(client, env.token("acme", "viewer"))
            assert response.status_code == 303
            assert response.headers["location"] == "/"
            cookie = next(
                v
                for k, v in response.headers.multi_items()
                if k == "set-cookie" and SESSION_COOKIE in v
            )
            assert "HttpOnly" in cookie
            assert "SameSite=strict" in cookie
            page = await client.get("/")
            assert page.status_code == 200
            assert 'id="tenant">acme<' in page.text

    scenario(tmp_path, body)


def test_login_needs_the_form_csrf_cookie(tmp_path: Path) -> None:
    async def body(env: Env, clock: FakeClock) -> None:
        async with env.client() as client:
            response = await client.post(
                "/login", data={"token": env.token("acme", "admin"), "csrf_token": "forged"}
            )
            assert response.status_code == 403
            assert SESSION_COOKIE not in response.headers.get("set-cookie", "")

    scenario(tmp_path, body)


def test_a_bad_token_is_refused_and_attempts_are_limited_per_address(tmp_path: Path) -> None:
    async def body(env: Env, clock: FakeClock) -> None:
        async with env.client(address="10.1.1.1") as client:
            for _ in range(env.settings.login_attempts):
                assert (await login(client, "cft_nope")).status_code == 401
            blocked = await login(client, env.token("acme", "admin"))
            assert blocked.status_code == 429
            assert blocked.headers["retry-after"] == str(int(env.settings.login_window))
        async with env.client(address="10.2.2.2") as other:
            assert (await login(other, env.token("acme", "admin"))).status_code == 303
        clock.advance(env.settings.login_window + 1)
        async with env.client(address="10.1.1.1") as client:
            assert (await login(client, env.token("acme", "admin"))).status_code == 303

    scenario(tmp_path, body)


def test_a_session_post_needs_the_csrf_token(tmp_path: Path) -> None:
    async def body(env: Env, clock: FakeClock) -> None:
        async with env.client() as client:
            await login(client, env.token("acme", "admin"))
            page = await client.get("/circuits")
            token = csrf_of(page.text)
            refused = await client.post("/circuits/echo/reset", data={"csrf_token": "wrong"})
            assert refused.status_code == 403
            missing = await client.post("/api/connectors/echo/circuit/reset")
            assert missing.status_code == 403
            done = await client.post("/circuits/echo/reset", data={"csrf_token": token})
            assert done.status_code == 303
            api = await client.post(
                "/api/connectors/echo/circuit/reset", headers={"X-CSRF-Token": token}
            )
            assert api.status_code == 200

    scenario(tmp_path, body)


def test_logout_ends_the_session_even_for_a_replayed_cookie(tmp_path: Path) -> None:
    async def body(env: Env, clock: FakeClock) -> None:
        async with env.client() as client:
            await login(client, env.token("acme", "viewer"))
            cookie = client.cookies.get(SESSION_COOKIE)
            assert cookie
            page = await client.get("/")
            out = await client.post("/logout", data={"csrf_token": csrf_of(page.text)})
            assert out.status_code == 303
        async with env.client(cookies={SESSION_COOKIE: cookie}) as replay:
            again = await replay.get("/api/connectors")
            assert again.status_code == 401

    scenario(tmp_path, body)


def test_revoking_the_api_token_ends_its_sessions(tmp_path: Path) -> None:
    async def body(env: Env, clock: FakeClock) -> None:
        token = env.token("acme", "viewer")
        async with env.client() as client:
            await login(client, token)
            assert (await client.get("/api/connectors")).status_code == 200
            token_id = token.split("_")[1]
            await env.hub.services.api_tokens.revoke(token_id)
            clock.advance(10)  # past the verification caches
            assert (await client.get("/api/connectors")).status_code == 401

    scenario(tmp_path, body)


def test_a_tampered_or_expired_session_cookie_is_refused(tmp_path: Path) -> None:
    async def body(env: Env, clock: FakeClock) -> None:
        async with env.client() as client:
            await login(client, env.token("acme", "admin"))
            cookie = client.cookies.get(SESSION_COOKIE)
            assert cookie
        payload, signature = cookie.split(".")
        forged = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + signature
        async with env.client(cookies={SESSION_COOKIE: forged}) as bad:
            assert (await bad.get("/api/connectors")).status_code == 401
        clock.advance(env.settings.session_lifetime + 1)
        async with env.client(cookies={SESSION_COOKIE: cookie}) as old:
            assert (await old.get("/api/connectors")).status_code == 401

    scenario(tmp_path, body)


def test_a_browser_without_a_session_is_sent_to_the_login_form(tmp_path: Path) -> None:
    async def body(env: Env, clock: FakeClock) -> None:
        async with env.client() as client:
            page = await client.get("/circuits", headers={"Accept": "text/html"})
            icon = await client.get("/favicon.ico", headers={"Accept": "image/*"})
            api = await client.get("/api/audit", headers={"Accept": "text/html"})
        assert page.status_code == 303
        assert page.headers["location"] == "/login"
        assert icon.status_code == 401
        assert api.status_code == 401

    scenario(tmp_path, body)


def test_only_the_documented_paths_are_public() -> None:
    assert is_public("GET", "/livez")
    assert is_public("POST", "/login")
    assert is_public("GET", "/static/app.css")
    assert is_public("GET", "/oauth/callback")
    assert is_public("POST", "/api/webhooks/x")
    assert not is_public("GET", "/api/webhooks/x")
    assert not is_public("GET", "/")
    assert not is_public("GET", "/metrics")
    assert not is_public("GET", "/openapi.json")
    assert not is_public("GET", "/livez/../api/audit")

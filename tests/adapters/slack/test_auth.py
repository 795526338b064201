"""The bot token goes only to the Web API, never to upload or webhook URLs."""

from __future__ import annotations

import asyncio

import httpx2

from connectors.adapters.slack.auth import ScopedAuth
from connectors.auth import BearerAuth
from connectors.secrets import Secret


def _sent(urls: list[str]) -> list[httpx2.Request]:
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json={"ok": True})

    auth = ScopedAuth(BearerAuth(Secret("xoxb-scoped-token")), "https://slack.com/api/")

    async def main() -> None:
        async with httpx2.AsyncClient(transport=httpx2.MockTransport(handler), auth=auth) as c:
            for url in urls:
                await c.post(url)

    asyncio.run(main())
    return seen


def test_requests_under_the_web_api_get_the_token():
    [request] = _sent(["https://slack.com/api/auth.test"])
    assert request.headers["authorization"] == "Bearer xoxb-scoped-token"


def test_other_urls_get_no_token():
    requests = _sent(
        [
            "https://files.slack.com/upload/v1/abc",
            "https://hooks.slack.com/services/T/B/x",
            "https://slack.com/oauth/v2/authorize",
            "http://slack.com/api/auth.test",  # another scheme: another origin
            "https://slack.com.evil.test/api/auth.test",
        ]
    )
    assert all("authorization" not in r.headers for r in requests)


def test_the_repr_shows_no_token():
    auth = ScopedAuth(BearerAuth(Secret("xoxb-scoped-token")), "https://slack.com/api/")
    assert "xoxb-scoped-token" not in repr(auth)


def test_the_scoped_editor_puts_the_token_under_the_prefix_only():
    from connectors.auth.static import request_editor

    edit = request_editor(
        ScopedAuth(BearerAuth(Secret("xoxb-scoped-token")), "https://slack.com/api/")
    )
    assert edit is not None
    inside = httpx2.Request("POST", "https://slack.com/api/auth.test")
    outside = httpx2.Request("POST", "https://files.slack.com/upload/v1/abc")
    edit(inside)
    edit(outside)
    assert inside.headers["authorization"] == "Bearer xoxb-scoped-token"
    assert "authorization" not in outside.headers


def test_a_scoped_flow_that_must_be_driven_offers_no_editor():
    from connectors.auth.static import request_editor

    class Driven(httpx2.Auth):
        def auth_flow(self, request):
            yield request

    assert request_editor(ScopedAuth(Driven(), "https://slack.com/api/")) is None

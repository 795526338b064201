"""TokenEndpoint: client authentication on the form POST and translation of every failure."""

from __future__ import annotations

import asyncio
import base64

import httpx2
import pytest

from connectors.auth import ClientCredentials, TokenEndpoint
from connectors.clock import FakeClock
from connectors.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    DefinitionError,
    RateLimited,
    ReauthorizationRequired,
    ScopeDenied,
    ServiceUnavailable,
    Timeout,
)
from connectors.secrets import Secret

from ._support import TOKEN_URL, form_of, json_response

CREDS = ClientCredentials("my client", Secret("s3cret/with:chars-x9"))


def call(handler, *, credentials=CREDS, form=None):
    seen: list[httpx2.Request] = []

    async def handle(request: httpx2.Request):
        seen.append(request)
        result = handler(request)
        return result

    async def main():
        async with httpx2.AsyncClient(transport=httpx2.MockTransport(handle)) as client:
            endpoint = TokenEndpoint(
                TOKEN_URL, client=client, credentials=credentials, clock=FakeClock(), connector="sf"
            )
            return await endpoint.request(form or {"grant_type": "client_credentials"})

    return asyncio.run(main()), seen


OK = {"access_token": "acc-x9", "token_type": "Bearer", "expires_in": 60}


def test_client_secret_basic_form_urlencodes_id_and_secret():
    token, seen = call(lambda r: json_response(200, OK))
    header = seen[0].headers["Authorization"]
    decoded = base64.b64decode(header.removeprefix("Basic ")).decode()
    assert decoded == "my%20client:s3cret%2Fwith%3Achars-x9"
    assert seen[0].headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert form_of(seen[0]) == {"grant_type": "client_credentials"}
    assert token.access_token.reveal() == "acc-x9"
    assert token.expires_at == FakeClock().time() + 60


def test_client_secret_post_and_public_client_put_credentials_in_the_form():
    _, seen = call(
        lambda r: json_response(200, OK),
        credentials=ClientCredentials("cid", Secret("csecret-x9"), method="client_secret_post"),
    )
    assert form_of(seen[0]) == {
        "grant_type": "client_credentials",
        "client_id": "cid",
        "client_secret": "csecret-x9",
    }
    assert "Authorization" not in seen[0].headers
    _, seen = call(
        lambda r: json_response(200, OK), credentials=ClientCredentials("cid", None, "none")
    )
    assert form_of(seen[0]) == {"grant_type": "client_credentials", "client_id": "cid"}
    with pytest.raises(DefinitionError):
        ClientCredentials("cid", None)


@pytest.mark.parametrize(
    ("status", "body", "error", "code"),
    [
        (
            400,
            {"error": "invalid_grant", "error_description": "expired access/refresh token"},
            ReauthorizationRequired,
            "invalid_grant",
        ),
        (
            200,
            {"ok": False, "error": "invalid_refresh_token"},
            ReauthorizationRequired,
            "invalid_refresh_token",
        ),
        (
            401,
            {"error": "invalid_client", "error_description": "invalid client credentials"},
            AuthenticationFailed,
            "invalid_client",
        ),
        (
            200,
            {"ok": False, "error": "invalid_client_id"},
            AuthenticationFailed,
            "invalid_client_id",
        ),
        (400, {"error": "invalid_scope"}, ScopeDenied, "invalid_scope"),
        (400, "not json", AuthenticationFailed, None),
        (429, {"error": "rate_limited"}, RateLimited, "rate_limited"),
        (503, "<html>down</html>", ServiceUnavailable, None),
        (500, {"error": "server_error"}, ServiceUnavailable, "server_error"),
    ],
)
def test_error_responses_map_to_typed_errors(status, body, error, code):
    def handler(request):
        if isinstance(body, str):
            return httpx2.Response(status, content=body.encode())
        return json_response(status, body)

    with pytest.raises(error) as info:
        call(handler)
    assert type(info.value) is error
    assert info.value.provider_code == code
    assert info.value.status == status
    assert info.value.connector == "sf"


def test_invalid_grant_is_not_just_authentication_failed():
    with pytest.raises(ReauthorizationRequired) as info:
        call(lambda r: json_response(400, {"error": "invalid_grant"}))
    assert "re-authorise" in info.value.action or "connect" in (info.value.hint or "")


def test_rate_limit_carries_retry_after():
    with pytest.raises(RateLimited) as info:
        call(lambda r: json_response(429, {}, headers={"Retry-After": "12"}))
    assert info.value.retry_after == 12.0


def test_network_failures_are_translated():
    def refuse(request):
        raise httpx2.ConnectError("refused", request=request)

    def slow(request):
        raise httpx2.ReadTimeout("slow", request=request)

    with pytest.raises(ConnectionFailed) as info:
        call(refuse)
    assert info.value.request_sent is False
    with pytest.raises(Timeout):
        call(slow)


def test_success_without_a_json_object_is_an_authentication_failure():
    with pytest.raises(AuthenticationFailed):
        call(lambda r: httpx2.Response(200, content=b"access_token=x"))
    with pytest.raises(AuthenticationFailed, match="access_token"):
        call(lambda r: json_response(200, {"token_type": "Bearer"}))


def test_error_description_is_redacted_and_truncated():
    leaked = Secret("echoed-refresh-token-canary")
    body = {
        "error": "invalid_grant",
        "error_description": f"bad token {leaked.reveal()} " + "x" * 500,
    }
    with pytest.raises(ReauthorizationRequired) as info:
        call(lambda r: json_response(400, body))
    text = str(info.value)
    assert leaked.reveal() not in text
    assert len(text) < 500


def test_endpoint_url_must_be_http_and_repr_hides_the_secret():
    client = httpx2.AsyncClient()
    try:
        with pytest.raises(DefinitionError):
            TokenEndpoint("ftp://x", client=client)
        endpoint = TokenEndpoint(TOKEN_URL, client=client, credentials=CREDS)
        assert "s3cret" not in repr(endpoint)
        assert "s3cret" not in repr(CREDS)
    finally:
        asyncio.run(client.aclose())

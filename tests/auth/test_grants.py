"""OAuth grants: the forms they send and how they treat the token sets they get back."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
import structlog
from joserfc import jwt
from joserfc.jwk import RSAKey

from connectors.auth import (
    JWT_BEARER_GRANT_TYPE,
    AuthorizationCodeFlow,
    ClientCredentials,
    ClientCredentialsGrant,
    JwtBearerGrant,
    JwtSigner,
    PasswordGrant,
    RefreshTokenGrant,
    TokenEndpoint,
    TokenGrant,
    TokenSet,
    s256_challenge,
)
from connectors.clock import FakeClock
from connectors.errors import DefinitionError, InvalidRequest, ReauthorizationRequired
from connectors.secrets import Secret

from ._support import TOKEN_URL, form_of, json_response

RSA = RSAKey.generate_key(2048)
CREDS = ClientCredentials("cid", Secret("csecret-x9"))


class Recorder:
    def __init__(self, body: dict[str, object] | None = None) -> None:
        self.forms: list[dict[str, str]] = []
        self.body = body or {"access_token": "new-access-x9", "expires_in": 3600}

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.forms.append(form_of(request))
        return json_response(200, self.body)


def run(make_grant, current: TokenSet | None = None, body=None, credentials=CREDS):
    recorder = Recorder(body)
    clock = FakeClock()

    async def main():
        async with httpx2.AsyncClient(transport=httpx2.MockTransport(recorder)) as client:
            endpoint = TokenEndpoint(TOKEN_URL, client=client, credentials=credentials, clock=clock)
            grant = make_grant(endpoint)
            assert isinstance(grant, TokenGrant)
            return await grant.obtain(current)

    return asyncio.run(main()), recorder.forms, clock


def test_client_credentials_grant_sends_grant_type_and_scopes():
    token, forms, _ = run(
        lambda e: ClientCredentialsGrant(e, scopes=["b", "a"], extra={"audience": "x"})
    )
    assert forms == [{"grant_type": "client_credentials", "scope": "a b", "audience": "x"}]
    assert token.access_token.reveal() == "new-access-x9"
    with pytest.raises(DefinitionError):
        run(lambda e: ClientCredentialsGrant(e), credentials=None)


def test_refresh_grant_uses_the_stored_refresh_token_and_keeps_it_when_not_rotated():
    current = TokenSet(access_token=Secret("old-x9xx"), refresh_token=Secret("r-old-x9"))
    token, forms, _ = run(lambda e: RefreshTokenGrant(e), current)
    assert forms == [{"grant_type": "refresh_token", "refresh_token": "r-old-x9"}]
    assert token.refresh_token == current.refresh_token


def test_refresh_grant_takes_the_rotated_refresh_token():
    current = TokenSet(access_token=Secret("old-x9xx"), refresh_token=Secret("r-old-x9"))
    body = {"access_token": "a2-x9xxx", "refresh_token": "r-new-x9", "expires_in": 43200}
    token, _, _ = run(lambda e: RefreshTokenGrant(e), current, body)
    assert token.refresh_token is not None
    assert token.refresh_token.reveal() == "r-new-x9"


def test_refresh_grant_without_a_refresh_token_requires_reauthorization():
    with pytest.raises(ReauthorizationRequired):
        run(lambda e: RefreshTokenGrant(e), TokenSet(access_token=Secret("a-x9xx")))
    with pytest.raises(ReauthorizationRequired):
        run(lambda e: RefreshTokenGrant(e), None)


def test_salesforce_jwt_bearer_assertion_has_the_rfc_7523_claims():
    pem = Secret(RSA.as_pem(private=True).decode())
    token, forms, clock = run(
        lambda e: JwtBearerGrant.salesforce(
            e,
            client_id="3MVG9-consumer-key",
            username="integration@acme.example",
            private_key=pem,
            login_url="https://test.salesforce.com/services/oauth2/token",
        ),
        body={"access_token": "sf-x9xx", "instance_url": "https://acme.my.salesforce.com"},
        credentials=None,
    )
    (form,) = forms
    assert (
        form["grant_type"]
        == JWT_BEARER_GRANT_TYPE
        == ("urn:ietf:params:oauth:grant-type:jwt-bearer")
    )
    assert set(form) == {"grant_type", "assertion"}
    public = RSAKey.import_key(RSA.as_pem(private=False))
    decoded = jwt.decode(form["assertion"], public, algorithms=["RS256"])
    assert decoded.header["alg"] == "RS256"
    now = int(clock.time())
    assert decoded.claims["iss"] == "3MVG9-consumer-key"
    assert decoded.claims["sub"] == "integration@acme.example"
    assert decoded.claims["aud"] == "https://test.salesforce.com"
    assert decoded.claims["exp"] == now + 180
    assert token.instance_url == "https://acme.my.salesforce.com"
    assert token.refresh_token is None


def test_jwt_bearer_grant_needs_iss_sub_aud():
    async def main():
        async with httpx2.AsyncClient() as client:
            endpoint = TokenEndpoint(TOKEN_URL, client=client)
            signer = JwtSigner(Secret("k" * 32), algorithm="HS256", issuer="i")
            with pytest.raises(DefinitionError, match="iss, sub and aud"):
                JwtBearerGrant(endpoint, signer)

    asyncio.run(main())


def test_password_grant_logs_a_deprecation_warning_and_sends_the_password():
    with structlog.testing.capture_logs() as logs:
        token, forms, _ = run(
            lambda e: PasswordGrant(e, username="alice", password=Secret("pw-canary-x9"))
        )
    assert forms == [{"grant_type": "password", "username": "alice", "password": "pw-canary-x9"}]
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [w["event"] for w in warnings] == ["oauth2.password_grant_deprecated"]
    assert "pw-canary-x9" not in repr(logs)
    assert token.access_token.reveal() == "new-access-x9"


def test_authorization_url_has_state_and_s256_challenge():
    async def main():
        async with httpx2.AsyncClient() as client:
            flow = AuthorizationCodeFlow(
                TokenEndpoint(TOKEN_URL, client=client, credentials=CREDS),
                authorize_url="https://login.example.test/services/oauth2/authorize",
                client_id="cid",
                redirect_uri="https://app.example.test/oauth/callback",
                scopes=["api", "refresh_token"],
                extra_params={"prompt": "consent"},
            )
            return flow.authorization_url(), flow.authorization_url()

    request, other = asyncio.run(main())
    parts = urlsplit(request.url)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert parts.path == "/services/oauth2/authorize"
    assert params == {
        "response_type": "code",
        "client_id": "cid",
        "redirect_uri": "https://app.example.test/oauth/callback",
        "scope": "api refresh_token",
        "state": request.state,
        "code_challenge": s256_challenge(request.code_verifier),
        "code_challenge_method": "S256",
        "prompt": "consent",
    }
    assert request.state != other.state
    assert request.code_verifier != other.code_verifier
    assert request.code_verifier.reveal() not in request.url


def test_slack_style_authorization_url_uses_comma_separated_scopes():
    async def main():
        async with httpx2.AsyncClient() as client:
            flow = AuthorizationCodeFlow(
                TokenEndpoint(
                    "https://slack.com/api/oauth.v2.access", client=client, credentials=CREDS
                ),
                authorize_url="https://slack.com/oauth/v2/authorize",
                client_id="cid",
                redirect_uri="https://app.example.test/cb",
                scopes=["chat:write", "channels:read"],
                scope_separator=",",
            )
            return flow.authorization_url(state="fixed-state")

    request = asyncio.run(main())
    params = parse_qs(urlsplit(request.url).query)
    assert params["scope"] == ["channels:read,chat:write"]
    assert params["state"] == ["fixed-state"]


def test_exchange_code_sends_code_verifier_and_redirect_uri():
    verifier = Secret("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
    body = {"access_token": "a-x9xx", "refresh_token": "r-x9xx", "scope": "api refresh_token"}

    def make(endpoint):
        flow = AuthorizationCodeFlow(
            endpoint,
            authorize_url="https://login.example.test/authorize",
            client_id="cid",
            redirect_uri="https://app.example.test/cb",
        )

        class Exchange:
            async def obtain(self, current):
                return await flow.exchange_code("the-code", verifier)

        return Exchange()

    token, forms, _ = run(make, body=body)
    assert forms == [
        {
            "grant_type": "authorization_code",
            "code": "the-code",
            "redirect_uri": "https://app.example.test/cb",
            "code_verifier": verifier.reveal(),
        }
    ]
    assert token.scopes == {"api", "refresh_token"}


def test_exchange_code_rejects_a_malformed_verifier_before_any_request():
    async def main():
        sent: list[httpx2.Request] = []
        transport = httpx2.MockTransport(lambda r: sent.append(r) or json_response(200, {}))
        async with httpx2.AsyncClient(transport=transport) as client:
            flow = AuthorizationCodeFlow(
                TokenEndpoint(TOKEN_URL, client=client, credentials=CREDS),
                authorize_url="https://login.example.test/authorize",
                client_id="cid",
                redirect_uri="https://app.example.test/cb",
            )
            with pytest.raises(InvalidRequest, match="43 to 128"):
                await flow.exchange_code("the-code", "too-short")
        assert sent == []

    asyncio.run(main())

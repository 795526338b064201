"""Auth test fakes: a rotating OAuth token server, a bearer API, a recording token store."""

from __future__ import annotations

import asyncio
import itertools
import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import httpx2

from connectors.auth import (
    ClientCredentials,
    InMemoryTokenStore,
    RefreshTokenGrant,
    StoredToken,
    TokenEndpoint,
    TokenSet,
)
from connectors.clock import Clock
from connectors.secrets import Secret

TOKEN_URL = "https://login.example.test/services/oauth2/token"
API_URL = "https://api.example.test/data"


def form_of(request: httpx2.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode()).items()}


def json_response(status: int, body: object, headers: dict[str, str] | None = None):
    return httpx2.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


@dataclass
class TokenServer:
    """An OAuth token endpoint that rotates refresh tokens and rejects reuse with invalid_grant.

    ``expires_in=None`` answers like Salesforce (no lifetime, millisecond ``issued_at``).
    ``yields`` awaits that many event-loop turns per request so concurrent callers interleave.
    """

    rotate: bool = True
    expires_in: int | None = 3600
    yields: int = 3
    prefix: str = "tok"
    requests: list[dict[str, str]] = field(default_factory=list)
    invalid_grants: int = 0
    fail_with: tuple[int, dict[str, object]] | None = None
    _seq: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    valid_refresh: str | None = None
    valid_access: set[str] = field(default_factory=set)
    on_issue: list[str] = field(default_factory=list)

    def seed(self) -> TokenSet:
        """The initial token set (as if connected earlier); its access token is still valid."""
        n = next(self._seq)
        access, refresh = f"{self.prefix}-access-{n}-x9", f"{self.prefix}-refresh-{n}-x9"
        self.valid_refresh = refresh
        self.valid_access = {access}
        return TokenSet(
            access_token=Secret(access),
            refresh_token=Secret(refresh),
            scopes=frozenset({"api"}),
        )

    def expire_access(self) -> None:
        self.valid_access.clear()

    async def handle(self, request: httpx2.Request) -> httpx2.Response:
        for _ in range(self.yields):
            await asyncio.sleep(0)
        form = form_of(request)
        self.requests.append(form)
        if self.fail_with is not None:
            status, body = self.fail_with
            return json_response(status, body)
        grant = form.get("grant_type")
        if grant == "refresh_token" and form.get("refresh_token") != self.valid_refresh:
            self.invalid_grants += 1
            # Reuse of a rotated-out token revokes the whole family (Salesforce behaviour).
            self.valid_refresh = None
            self.valid_access.clear()
            return json_response(
                400,
                {"error": "invalid_grant", "error_description": "expired access/refresh token"},
            )
        n = next(self._seq)
        access = f"{self.prefix}-access-{n}-x9"
        self.valid_access = {access}
        self.on_issue.append(access)
        body: dict[str, object] = {
            "access_token": access,
            "token_type": "Bearer",
            "scope": "api refresh_token",
            "instance_url": "https://na1.example.test",
        }
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        else:
            body["issued_at"] = "1708058728442"
        if grant == "refresh_token" and self.rotate:
            self.valid_refresh = f"{self.prefix}-refresh-{n}-x9"
            body["refresh_token"] = self.valid_refresh
        return json_response(200, body)

    @property
    def count(self) -> int:
        return len(self.requests)


@dataclass
class BearerApi:
    """An API that accepts only the token server's currently valid access tokens."""

    tokens: TokenServer
    reject_status: int = 401
    seen: list[str] = field(default_factory=list)
    log: list[tuple[str, str]] | None = None

    async def handle(self, request: httpx2.Request) -> httpx2.Response:
        await asyncio.sleep(0)
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.seen.append(token)
        if self.log is not None:
            self.log.append(("api", token))
        if token in self.tokens.valid_access:
            return json_response(200, {"ok": True})
        return json_response(
            self.reject_status,
            [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}],
        )


def router(tokens: TokenServer, api: BearerApi | None = None) -> httpx2.MockTransport:
    async def handle(request: httpx2.Request) -> httpx2.Response:
        if request.url.path.endswith("/token"):
            return await tokens.handle(request)
        assert api is not None, f"unexpected request to {request.url}"
        return await api.handle(request)

    return httpx2.MockTransport(handle)


def refresh_grant(client: httpx2.AsyncClient, clock: Clock) -> RefreshTokenGrant:
    creds = ClientCredentials("client-id", Secret("client-secret-x9"))
    return RefreshTokenGrant(
        TokenEndpoint(TOKEN_URL, client=client, credentials=creds, clock=clock, connector="demo")
    )


class RecordingStore(InMemoryTokenStore):
    """An in-memory store that records calls and yields to the loop inside each (interleaving)."""

    def __init__(self, log: list[tuple[str, str]] | None = None, yields: int = 1) -> None:
        super().__init__()
        self.log: list[tuple[str, str]] = [] if log is None else log
        self.yields = yields
        self.saves = 0
        self.conflicts = 0

    async def _turns(self) -> None:
        for _ in range(self.yields):
            await asyncio.sleep(0)

    async def load(self, tenant: str, name: str) -> StoredToken | None:
        await self._turns()
        return await super().load(tenant, name)

    async def save(
        self, tenant: str, name: str, token: TokenSet, *, expected_version: int | None
    ) -> int:
        await self._turns()
        try:
            version = await super().save(tenant, name, token, expected_version=expected_version)
        except Exception:
            self.conflicts += 1
            raise
        self.saves += 1
        refresh = token.refresh_token.reveal() if token.refresh_token else ""
        self.log.append(("save", f"{token.access_token.reveal()}|{refresh}|v{version}"))
        return version

"""A tiny provider for rotation tests: API keys with an admin API, rotating OAuth tokens, a ping.

It behaves like providers that support zero-downtime rotation: a new key is created while the
old one keeps working until it is revoked. ``reject_new_keys`` makes new keys fail
authentication (the rotation must then roll back).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from urllib.parse import parse_qsl

import httpx2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.auth.managed import ManagedTokenAuth
from connectors.auth.manager import TokenManager
from connectors.auth.static import ApiKeyAuth
from connectors.auth.tokens import TokenSet
from connectors.base import Connector, operation
from connectors.clock import Clock
from connectors.http import ConnectorHttpClient
from connectors.observability.health import Health, HealthCheck, HealthStatus
from connectors.rotation.rotators import RotationRequest
from connectors.secrets.secret import Secret

BASE = "http://provider.test"


class Provider:
    """The provider's state and its ASGI app."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.keys: set[str] = {"key-0"}
        self.revoked: set[str] = set()
        self.discarded: set[str] = set()
        self.reject_new_keys = False
        self._rejected: set[str] = set()
        self.access: dict[str, float] = {}
        self.refresh: set[str] = set()
        self.refreshes = 0
        self.failures = 0
        self.app = Starlette(
            routes=[
                Route("/ping", self._ping, methods=["GET"]),
                Route("/admin/keys", self._create_key, methods=["POST"]),
                Route("/admin/keys/revoke", self._revoke_key, methods=["POST"]),
                Route("/token", self._token, methods=["POST"]),
            ]
        )

    def transport(self) -> httpx2.ASGITransport:
        return httpx2.ASGITransport(app=self.app)

    def issue(self, lifetime: float = 3600.0) -> dict[str, object]:
        access, refresh = "at-" + secrets.token_hex(8), "rt-" + secrets.token_hex(8)
        self.access[access] = self.clock.time() + lifetime
        self.refresh.add(refresh)
        return {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": lifetime,
            "token_type": "Bearer",
        }

    def _authorised(self, headers: Mapping[str, str]) -> bool:
        key = headers.get("x-api-key")
        if key is not None:
            return key in self.keys and key not in self._rejected
        scheme, _, token = headers.get("authorization", "").partition(" ")
        expires = self.access.get(token) if scheme.lower() == "bearer" else None
        return expires is not None and expires > self.clock.time()

    async def _ping(self, request: Request) -> Response:
        if not self._authorised(request.headers):
            self.failures += 1
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return JSONResponse({"ok": True})

    async def _create_key(self, request: Request) -> Response:
        if not self._authorised(request.headers):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        key = "key-" + secrets.token_hex(8)
        self.keys.add(key)
        if self.reject_new_keys:
            self._rejected.add(key)
        return JSONResponse({"key": key})

    async def _revoke_key(self, request: Request) -> Response:
        body = await request.json()
        key = str(body["key"])
        self.keys.discard(key)
        (self.discarded if body.get("discard") else self.revoked).add(key)
        return Response(status_code=204)

    async def _token(self, request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode()))
        token = form.get("refresh_token", "")
        if form.get("grant_type") != "refresh_token" or token not in self.refresh:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        self.refresh.discard(token)  # rotating refresh tokens
        self.refreshes += 1
        return JSONResponse(self.issue())


class ProviderKeyRotator:
    """The provider's admin API as a :class:`~connectors.rotation.Rotator`."""

    async def create(self, request: RotationRequest) -> Secret:
        async with request.client(BASE) as client:
            answer = await client.post(
                "/admin/keys", headers={"x-api-key": request.current.reveal()}
            )
            answer.raise_for_status()
            return Secret(str(answer.json()["key"]), name="provider-key")

    async def revoke(self, request: RotationRequest, old: Secret) -> None:
        async with request.client(BASE) as client:
            (await client.post("/admin/keys/revoke", json={"key": old.reveal()})).raise_for_status()

    async def discard(self, request: RotationRequest, new: Secret) -> None:
        async with request.client(BASE) as client:
            answer = await client.post(
                "/admin/keys/revoke", json={"key": new.reveal(), "discard": True}
            )
            answer.raise_for_status()


class RefreshGrant:
    """``grant_type=refresh_token`` against the provider (a minimal TokenGrant)."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    async def obtain(self, current: TokenSet | None) -> TokenSet:
        assert current is not None
        assert current.refresh_token is not None
        async with httpx2.AsyncClient(transport=self.provider.transport(), base_url=BASE) as c:
            answer = await c.post(
                "/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": current.refresh_token.reveal(),
                },
            )
        answer.raise_for_status()
        return TokenSet.from_response(answer.json(), self.provider.clock.time(), previous=current)


class PingConnector(Connector):
    """An adapter with an API key (``api_key``) or an OAuth credential (``oauth_credential``)."""

    name = "ping"
    version = "1.0.0"

    def create_http_client(self) -> ConnectorHttpClient:
        settings = self.runtime.settings
        auth: httpx2.Auth
        key = settings.get("api_key")
        if isinstance(key, Secret):
            auth = ApiKeyAuth(key)
        else:
            manager: TokenManager = self.runtime.token_manager()
            auth = ManagedTokenAuth(manager, self.tenant, str(settings["oauth_credential"]))
        return ConnectorHttpClient(
            self.instance_name,
            base_url=BASE,
            pipeline=self.runtime.pipeline,
            transport=self.runtime.transport,
            clock=self.runtime.clock,
            auth=auth,
        )

    @operation(idempotent=True)
    async def ping(self) -> bool:
        response = await self.request("GET", "/ping")
        return bool(response.json()["ok"])

    async def health_check(self) -> Health:
        now = self.runtime.clock.time()
        try:
            await self.ping()
        except Exception as exc:
            check = HealthCheck("auth", HealthStatus.UNHEALTHY, type(exc).__name__, now)
        else:
            check = HealthCheck("auth", HealthStatus.HEALTHY, "accepted", now)
        return Health.from_checks([check])

"""Who is calling: API tokens (Bearer), dashboard sessions (signed cookie), CSRF, login limits.

Deny by default: :class:`AuthGate` is ASGI middleware in front of every route. A request for a
path that is not explicitly public (``/livez``, the login page, static files, the OAuth callback
— authenticated by its signed ``state`` — and inbound webhooks — authenticated by their
signature) must carry a valid ``Authorization: Bearer cft_...`` token or session cookie, else
it gets ``401`` (API) or a redirect to ``/login`` (browser pages) and reaches no route. Routes
then check the :class:`Principal`'s role against :data:`~connectors.access.MATRIX` with
:func:`require`.

A session is a signed cookie (``HttpOnly; SameSite=Strict``) naming the API token it was opened
with; every request re-checks that the token is still active (cached a few seconds) and that the
session was not logged out (a marker in the state backend, so a logout counts in every process
sharing it). Forms carry a synchronizer CSRF token derived from the session id; the login form,
which has no session yet, uses a double-submit cookie. Login attempts are counted per client
address in the state backend.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

from fastapi import HTTPException, Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from connectors.access.roles import MATRIX, Permission, Role
from connectors.access.tokens import ApiTokens, TokenInfo
from connectors.audit.events import AuditEvent
from connectors.clock import Clock
from connectors.errors import AuthenticationFailed
from connectors.resilience.keys import state_key
from connectors.server.settings import ServerSettings
from connectors.server.signing import derive, sign, unsign
from connectors.state.base import StateBackend

__all__ = [
    "CSRF_FIELD",
    "LOGIN_CSRF_COOKIE",
    "SESSION_COOKIE",
    "AuthGate",
    "Authenticator",
    "LoginLimiter",
    "Principal",
    "is_public",
    "require",
]

SESSION_COOKIE: Final = "cf_session"
LOGIN_CSRF_COOKIE: Final = "cf_login_csrf"
CSRF_FIELD: Final = "csrf_token"
_SESSION_PURPOSE: Final = "session"
_CSRF_PURPOSE: Final = "csrf"
_TOKEN_CACHE_TTL: Final = 5.0


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: one tenant, one role, from one API token."""

    tenant: str
    role: Role
    token_id: str
    via: Literal["token", "session"]
    session_id: str | None = None

    @property
    def actor(self) -> str:
        """What the audit log records as the actor."""
        return f"api-token:{self.token_id}"

    def can(self, permission: Permission) -> bool:
        """Whether the role allows ``permission`` in the principal's own tenant."""
        return permission in MATRIX[self.role]


def is_public(method: str, path: str) -> bool:
    """Paths answered without a token (each authenticates otherwise, or shows nothing)."""
    if path in ("/livez", "/login", "/oauth/callback") or path.startswith("/static/"):
        return True
    return method == "POST" and path.startswith("/api/webhooks/")


class Authenticator:
    """Turns a request's Bearer token or session cookie into a :class:`Principal`."""

    def __init__(
        self,
        tokens: ApiTokens,
        state: StateBackend,
        settings: ServerSettings,
        clock: Clock,
    ) -> None:
        self._tokens = tokens
        self._state = state
        self._settings = settings
        self._clock = clock
        self._cache: dict[str, tuple[TokenInfo | None, float]] = {}

    # --- API tokens -----------------------------------------------------------------------------

    async def from_bearer(self, header: str) -> Principal | None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            return None
        try:
            info = await self._tokens.verify(value.strip())
        except AuthenticationFailed:
            return None
        return Principal(info.tenant, info.role, info.id, "token")

    async def _token(self, token_id: str) -> TokenInfo | None:
        now = self._clock.monotonic()
        hit = self._cache.get(token_id)
        if hit is not None and hit[1] > now:
            return hit[0]
        info = await self._tokens.get(token_id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[token_id] = (info, now + _TOKEN_CACHE_TTL)
        return info

    # --- sessions -------------------------------------------------------------------------------

    def open_session(self, principal: Principal) -> tuple[str, str]:
        """A new session for a token holder: ``(cookie value, session id)``."""
        sid = secrets.token_urlsafe(18)
        cookie = sign(
            self._settings.key,
            _SESSION_PURPOSE,
            {"sid": sid, "tok": principal.token_id, "ten": principal.tenant},
            expires_at=self._clock.time() + self._settings.session_lifetime,
        )
        return cookie, sid

    async def from_session(self, cookie: str | None) -> Principal | None:
        data = unsign(self._settings.key, _SESSION_PURPOSE, cookie, now=self._clock.time())
        if data is None:
            return None
        sid, token_id, tenant = data.get("sid"), data.get("tok"), data.get("ten")
        if not (isinstance(sid, str) and isinstance(token_id, str) and isinstance(tenant, str)):
            return None
        if await self._state.counter_get(_logout_key(tenant, sid), now=self._clock.monotonic()):
            return None
        info = await self._token(token_id)
        if info is None or info.tenant != tenant:
            return None
        if not info.active(datetime.fromtimestamp(self._clock.time(), UTC)):
            return None
        return Principal(info.tenant, info.role, info.id, "session", sid)

    async def close_session(self, principal: Principal) -> None:
        """Log a session out everywhere the state backend is shared."""
        if principal.session_id is None:
            return
        await self._state.incr(
            _logout_key(principal.tenant, principal.session_id),
            ttl=self._settings.session_lifetime,
            now=self._clock.monotonic(),
        )

    async def authenticate(self, authorization: str | None, cookie: str | None) -> Principal | None:
        """The caller, from the Bearer header first, else the session cookie."""
        if authorization:
            return await self.from_bearer(authorization)
        return await self.from_session(cookie)

    # --- CSRF -----------------------------------------------------------------------------------

    def csrf_token(self, principal: Principal) -> str:
        """The synchronizer token of the principal's session ('' for Bearer callers)."""
        if principal.session_id is None:
            return ""
        return derive(self._settings.key, _CSRF_PURPOSE, principal.session_id)

    def csrf_ok(self, principal: Principal, presented: str | None) -> bool:
        """Bearer callers carry no ambient credential and need none; sessions must match."""
        if principal.via == "token":
            return True
        expected = self.csrf_token(principal)
        return bool(presented) and hmac.compare_digest(expected, presented or "")


def _logout_key(tenant: str, sid: str) -> str:
    return state_key(tenant, "srv", "session", sid)


class LoginLimiter:
    """At most ``attempts`` login posts per client address per ``window`` seconds."""

    def __init__(self, state: StateBackend, clock: Clock, *, attempts: int, window: float) -> None:
        self._state = state
        self._clock = clock
        self.attempts = attempts
        self.window = window

    async def hit(self, address: str) -> float | None:
        """Count an attempt; the seconds to wait when over the limit, else ``None``."""
        key = state_key("-", "srv", "login", address or "unknown")
        count = await self._state.incr(key, ttl=self.window, now=self._clock.monotonic())
        return self.window if count > self.attempts else None


class AuthGate:
    """ASGI middleware: only public paths pass without a valid token or session."""

    def __init__(self, app: ASGIApp, authenticator: Callable[[], Authenticator]) -> None:
        self.app = app
        self._authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        principal = await self._authenticator().authenticate(
            request.headers.get("authorization"), request.cookies.get(SESSION_COOKIE)
        )
        scope.setdefault("state", {})["principal"] = principal
        if principal is None and not is_public(request.method, request.url.path):
            await _unauthenticated(request)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _unauthenticated(request: Request) -> Response:
    path = request.url.path
    browser_page = "text/html" in request.headers.get("accept", "")
    if request.method == "GET" and browser_page and not path.startswith(("/api/", "/metrics")):
        return RedirectResponse("/login", status_code=303)
    return JSONResponse(
        {"error": "unauthorized", "message": "send 'Authorization: Bearer <API token>'"},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="connectors"'},
    )


def current(request: Request) -> Principal:
    """The request's principal (the gate guarantees one on non-public paths)."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:
        raise HTTPException(401, "authentication required")
    return principal


def require(permission: Permission) -> Callable[[Request], Awaitable[Principal]]:
    """A FastAPI dependency: the principal, if its role allows ``permission`` (else 403, and an
    ``access.denied`` audit record)."""

    async def dependency(request: Request) -> Principal:
        principal = current(request)
        if principal.can(permission):
            return principal
        hub = request.app.state.hub
        hub.services.audit.record(
            AuditEvent.new(
                clock=hub.clock,
                kind="access.denied",
                tenant=principal.tenant,
                actor=principal.actor,
                operation=permission.value,
                target=request.url.path[:200],
                outcome="denied",
                error_code="AccessDenied",
            )
        )
        raise HTTPException(
            403, f"the {principal.role.value} role may not {permission.value} in this tenant"
        )

    return dependency

""":class:`ManagedTokenAuth`: bearer tokens from the token manager, one refresh on rejection.

The flow asks the :class:`~connectors.auth.manager.TokenManager` for the token, sends the request,
and if the provider rejects the token it asks for one single-flight refresh and re-sends once. A
second rejection raises :class:`AuthenticationFailed`: the token is fresh, so the problem is the
grant or the permissions, and looping would only burn rate limit.

Providers signal "bad token" differently, so the test is an :class:`AuthFailureCheck`:

- :data:`UNAUTHORIZED`: HTTP 401 (no body needed);
- :data:`SALESFORCE_INVALID_SESSION`: 401 with ``errorCode`` ``INVALID_SESSION_ID``, except the
  "not valid for use with the REST API" variant, which a refresh cannot fix;
- :data:`SLACK_INVALID_AUTH`: HTTP 200 with ``{"ok": false, "error": "invalid_auth"}`` or
  ``"token_expired"``.

The body is read only for the statuses a check looks at, so streaming downloads stay streaming.
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Callable, Generator
from dataclasses import dataclass, field
from typing import Final

import httpx2

from connectors.auth.grants import TokenGrant
from connectors.auth.manager import TokenManager
from connectors.auth.tokens import TokenSet
from connectors.errors import AuthenticationFailed

__all__ = [
    "SALESFORCE_INVALID_SESSION",
    "SLACK_INVALID_AUTH",
    "UNAUTHORIZED",
    "AuthFailureCheck",
    "ManagedTokenAuth",
]


@dataclass(frozen=True, slots=True)
class AuthFailureCheck:
    """Decides whether a response means "this token is not accepted".

    ``statuses`` are the HTTP statuses that may mean it; ``body``, when set, looks at the (read)
    response to decide, and its presence is what makes the flow read bodies.
    """

    statuses: frozenset[int]
    body: Callable[[httpx2.Response], bool] | None = field(default=None, compare=False)
    name: str = "custom"

    @property
    def needs_body(self) -> bool:
        return self.body is not None

    def wants_body(self, response: httpx2.Response) -> bool:
        """Whether the body must be read before calling this check on ``response``."""
        return self.body is not None and response.status_code in self.statuses

    def __call__(self, response: httpx2.Response) -> bool:
        if response.status_code not in self.statuses:
            return False
        return self.body is None or self.body(response)


def _json(response: httpx2.Response) -> object:
    try:
        return json.loads(response.content or b"null")
    except (ValueError, UnicodeDecodeError):
        return None


_SF_NOT_REFRESHABLE: Final = "not valid for use with the REST API"


def _salesforce_invalid_session(response: httpx2.Response) -> bool:
    body = _json(response)
    items = body if isinstance(body, list) else [body]
    codes: list[str] = []
    for item in items:
        if not isinstance(item, dict):
            continue
        message = item.get("message") or item.get("exceptionMessage") or ""
        if isinstance(message, str) and _SF_NOT_REFRESHABLE in message:
            return False
        code = item.get("errorCode") or item.get("exceptionCode")
        if isinstance(code, str):
            codes.append(code)
    # A 401 without a readable body is still an auth failure.
    return not codes or any(c in ("INVALID_SESSION_ID", "InvalidSessionId") for c in codes)


def _slack_invalid_auth(response: httpx2.Response) -> bool:
    body = _json(response)
    return (
        isinstance(body, dict)
        and body.get("ok") is False
        and body.get("error") in ("invalid_auth", "token_expired")
    )


UNAUTHORIZED: Final = AuthFailureCheck(frozenset({401}), name="http-401")
SALESFORCE_INVALID_SESSION: Final = AuthFailureCheck(
    frozenset({401}), _salesforce_invalid_session, name="salesforce-invalid-session"
)
SLACK_INVALID_AUTH: Final = AuthFailureCheck(
    frozenset({200}), _slack_invalid_auth, name="slack-invalid-auth"
)


def _provider_code(response: httpx2.Response) -> str | None:
    body = _json(response)
    if isinstance(body, list) and body and isinstance(body[0], dict):
        body = body[0]
    if isinstance(body, dict):
        for name in ("errorCode", "error", "exceptionCode"):
            value = body.get(name)
            if isinstance(value, str):
                return value[:64]
    return None


class ManagedTokenAuth(httpx2.Auth):
    """``Authorization: Bearer`` from the token manager; on rejection one refresh and one retry.

    Works with :class:`httpx2.AsyncClient` only (the manager is async). ``grant`` overrides the
    grant registered with the manager for this credential.
    """

    # The request may be sent twice, so its body is buffered.
    requires_request_body = True

    def __init__(
        self,
        manager: TokenManager,
        tenant: str,
        credential: str,
        *,
        check: AuthFailureCheck = UNAUTHORIZED,
        grant: TokenGrant | None = None,
        scheme: str = "Bearer",
        connector: str | None = None,
    ) -> None:
        self.manager = manager
        self.tenant = tenant
        self.credential = credential
        self.check = check
        self.grant = grant
        self.scheme = scheme
        self.connector = connector
        self.requires_response_body = check.needs_body

    def _apply(self, request: httpx2.Request, token: TokenSet) -> None:
        request.headers["Authorization"] = f"{self.scheme} {token.access_token.reveal()}"

    async def _rejected(self, response: httpx2.Response) -> bool:
        if self.check.wants_body(response):
            await response.aread()
        return self.check(response)

    def sync_auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        raise TypeError("ManagedTokenAuth needs httpx2.AsyncClient (the token manager is async)")

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        await request.aread()
        token = await self.manager.get_token(self.tenant, self.credential, grant=self.grant)
        self._apply(request, token)
        response = yield request
        if not await self._rejected(response):
            return
        fresh = await self.manager.refresh(
            self.tenant, self.credential, stale=token, grant=self.grant
        )
        self._apply(request, fresh)
        response = yield request
        if await self._rejected(response):
            raise AuthenticationFailed(
                f"the provider rejected a freshly refreshed token for credential "
                f"{self.credential!r}",
                connector=self.connector,
                tenant=self.tenant,
                status=response.status_code,
                provider_code=_provider_code(response),
                hint="check the credential's permissions, or connect it again",
            )

    def __repr__(self) -> str:
        return (
            f"ManagedTokenAuth(tenant={self.tenant!r}, credential={self.credential!r}, "
            f"check={self.check.name!r})"
        )

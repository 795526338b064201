"""Slack OAuth v2: the install flow (authorize URL, code exchange) and token rotation.

Install: send the user to ``https://slack.com/oauth/v2/authorize?client_id&scope&user_scope&
redirect_uri&state`` (scopes comma-separated); Slack redirects back with ``code`` and ``state``;
``oauth.v2.access`` trades the code for the bot token (and, with token rotation on, a refresh
token and ``expires_in``, 12 hours). Rotation: ``oauth.v2.access`` with
``grant_type=refresh_token``; the refresh token is single use, so the new one must be persisted
before the new access token is used: the :class:`~connectors.auth.TokenManager` does that with a
compare-and-swap under a lease; this module only provides the grant it calls.

Client credentials go as HTTP Basic, as slack_sdk sends them. Errors come back as Slack's
``{"ok": false}`` envelope and are translated by :class:`~connectors.auth.TokenEndpoint`
(``invalid_refresh_token``/``invalid_code`` → :class:`ReauthorizationRequired`).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlencode

import httpx2

from connectors.auth import ClientCredentials, RefreshTokenGrant, TokenEndpoint, TokenSet
from connectors.clock import Clock, system_clock
from connectors.errors import AuthenticationFailed, DefinitionError
from connectors.secrets import Secret

__all__ = [
    "AUTHORIZE_URL",
    "InstallRequest",
    "SlackOAuthApp",
    "SlackRefreshGrant",
    "check_state",
]

AUTHORIZE_URL: Final = "https://slack.com/oauth/v2/authorize"
TOKEN_URL: Final = "https://slack.com/api/oauth.v2.access"  # noqa: S105 - an endpoint URL


@dataclass(frozen=True, slots=True)
class InstallRequest:
    """Where to send the installing user, and the ``state`` to check on the callback."""

    url: str
    state: str


def check_state(expected: str, received: str | None) -> None:
    """Refuse a callback whose ``state`` is not the one issued (constant-time comparison)."""
    if not received or not hmac.compare_digest(expected.encode(), received.encode()):
        raise AuthenticationFailed(
            "the OAuth callback's state does not match the install request",
            connector="slack",
            provider_code="state_mismatch",
            hint="start the install again; the callback may be forged or stale",
        )


class _Borrowed(httpx2.AsyncBaseTransport):
    """A transport owned by someone else: closing the client must not close it."""

    def __init__(self, inner: httpx2.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Nothing: the owner closes the transport."""


class SlackOAuthApp:
    """One Slack app's OAuth client: authorize URLs, code exchange, the refresh grant.

    ``token_url`` is ``oauth.v2.access`` under the Web API base URL. ``transport`` (tests: the
    emulator) is borrowed, never closed; each token call uses a short-lived client, since token
    calls are rare (installs, and rotations every 12 hours).
    """

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: Secret,
        token_url: str = TOKEN_URL,
        authorize_url: str = AUTHORIZE_URL,
        redirect_uri: str | None = None,
        scopes: Iterable[str] = (),
        user_scopes: Iterable[str] = (),
        transport: httpx2.AsyncBaseTransport | None = None,
        clock: Clock = system_clock,
    ) -> None:
        if not client_id:
            raise DefinitionError("a Slack OAuth app needs a client_id")
        if not isinstance(client_secret, Secret):
            raise TypeError("client_secret must be a Secret")
        if not authorize_url.startswith(("https://", "http://")):
            raise DefinitionError(f"authorize URL {authorize_url!r} is not an http(s) URL")
        self.credentials = ClientCredentials(client_id, client_secret, "client_secret_basic")
        self.token_url = token_url
        self.authorize_url = authorize_url
        self.redirect_uri = redirect_uri
        self.scopes = tuple(dict.fromkeys(scopes))
        self.user_scopes = tuple(dict.fromkeys(user_scopes))
        self.clock = clock
        self._transport = transport

    @property
    def client_id(self) -> str:
        return self.credentials.client_id

    def install_request(self, *, state: str | None = None) -> InstallRequest:
        """The authorize URL with a fresh (or the given) ``state`` (pure but for randomness)."""
        state = state or secrets.token_urlsafe(24)
        params = {"client_id": self.client_id}
        if self.scopes:
            params["scope"] = ",".join(self.scopes)
        if self.user_scopes:
            params["user_scope"] = ",".join(self.user_scopes)
        if self.redirect_uri:
            params["redirect_uri"] = self.redirect_uri
        params["state"] = state
        separator = "&" if "?" in self.authorize_url else "?"
        return InstallRequest(f"{self.authorize_url}{separator}{urlencode(params)}", state)

    def _client(self) -> httpx2.AsyncClient:
        transport = None if self._transport is None else _Borrowed(self._transport)
        return httpx2.AsyncClient(transport=transport)

    def _endpoint(self, client: httpx2.AsyncClient) -> TokenEndpoint:
        return TokenEndpoint(
            self.token_url,
            client=client,
            credentials=self.credentials,
            clock=self.clock,
            connector="slack",
        )

    async def exchange_code(self, code: str | Secret) -> TokenSet:
        """Trade the callback's ``code`` for the bot token set (one ``oauth.v2.access`` call)."""
        clear = code.reveal() if isinstance(code, Secret) else code
        if not clear:
            raise DefinitionError("the OAuth callback carried no code")
        form = {"grant_type": "authorization_code", "code": clear}
        if self.redirect_uri:
            form["redirect_uri"] = self.redirect_uri
        async with self._client() as client:
            return await self._endpoint(client).request(form, grant="authorization_code")

    def refresh_grant(self) -> SlackRefreshGrant:
        """The :class:`~connectors.auth.TokenGrant` that rotates this app's tokens."""
        return SlackRefreshGrant(self)

    def __repr__(self) -> str:
        return f"SlackOAuthApp(client_id={self.client_id!r}, token_url={self.token_url!r})"


class SlackRefreshGrant:
    """``oauth.v2.access`` with ``grant_type=refresh_token`` (Slack token rotation)."""

    def __init__(self, app: SlackOAuthApp) -> None:
        self.app = app

    async def obtain(self, current: TokenSet | None) -> TokenSet:
        async with self.app._client() as client:
            return await RefreshTokenGrant(self.app._endpoint(client)).obtain(current)

    def __repr__(self) -> str:
        return f"SlackRefreshGrant({self.app!r})"

"""Salesforce authentication: the OAuth grant built from settings, and the session auth flow.

Flows (``auth`` setting; inferred from which secrets are set when absent):

- ``jwt`` (preferred, server to server): RS256 assertion ``iss=client_id``, ``sub=username``,
  ``aud=login_url`` (or ``audience``), signed with ``private_key``; no stored token needed.
- ``client_credentials``: ``client_id`` + ``client_secret`` of a connected app with a run-as user
  (needs a My Domain ``login_url``).
- ``refresh_token``: renews with a refresh token, either the ``refresh_token`` setting or the one
  stored by the connect step (:func:`authorization_flow`, web server flow with PKCE).
- ``password`` (deprecated): ``username`` + ``password`` (+ ``security_token``); logs a warning
  on every connect.

Salesforce sends no ``expires_in``, so renewal is reactive: :class:`SalesforceSessionAuth`
refreshes once on ``401 INVALID_SESSION_ID`` and re-sends, except for the variant a refresh cannot
fix. Unlike its base it does not buffer request bodies that can be replayed (Bulk uploads stream
from a spooled file), so a 100 MB upload is never held in memory.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import httpx2

from connectors.auth import (
    SALESFORCE_INVALID_SESSION,
    AuthorizationCodeFlow,
    ClientCredentials,
    ClientCredentialsGrant,
    JwtBearerGrant,
    ManagedTokenAuth,
    PasswordGrant,
    RefreshTokenGrant,
    TokenEndpoint,
    TokenGrant,
    TokenManager,
    TokenSet,
)
from connectors.clock import Clock
from connectors.errors import AuthenticationFailed
from connectors.observability.logging import get_logger
from connectors.secrets import Secret

from .settings import SalesforceSettings

__all__ = [
    "SalesforceSessionAuth",
    "StoredOrSettingRefreshGrant",
    "authorization_flow",
    "build_grant",
    "token_endpoint",
]

_log = get_logger("connectors.salesforce")


def token_endpoint(
    settings: SalesforceSettings, client: httpx2.AsyncClient, clock: Clock
) -> TokenEndpoint:
    """The org's token endpoint, with the connected app's credentials when it has a secret."""
    credentials = None
    if settings.client_id is not None and settings.client_secret is not None:
        credentials = ClientCredentials(settings.client_id, settings.client_secret)
    elif settings.client_id is not None:
        credentials = ClientCredentials(settings.client_id, method="none")
    return TokenEndpoint(
        settings.token_url,
        client=client,
        credentials=credentials,
        clock=clock,
        connector="salesforce",
    )


class StoredOrSettingRefreshGrant:
    """The refresh token grant, seeded from the ``refresh_token`` setting when the token store
    has nothing yet (afterwards the stored, possibly rotated, refresh token wins)."""

    def __init__(self, endpoint: TokenEndpoint, seed: Secret | None) -> None:
        self._grant = RefreshTokenGrant(endpoint)
        self._seed = seed

    async def obtain(self, current: TokenSet | None) -> TokenSet:
        if (current is None or current.refresh_token is None) and self._seed is not None:
            current = TokenSet(access_token=Secret("unused"), refresh_token=self._seed)
        return await self._grant.obtain(current)

    def __repr__(self) -> str:
        return f"StoredOrSettingRefreshGrant({self._grant.endpoint!r})"


def build_grant(
    settings: SalesforceSettings, client: httpx2.AsyncClient, clock: Clock
) -> TokenGrant:
    """The grant for ``settings.auth`` (see the module docstring)."""
    endpoint = token_endpoint(settings, client, clock)
    if settings.auth == "jwt":
        assert settings.client_id
        assert settings.username
        assert settings.private_key
        return JwtBearerGrant.salesforce(
            endpoint,
            client_id=settings.client_id,
            username=settings.username,
            private_key=settings.private_key,
            login_url=settings.audience,
        )
    if settings.auth == "client_credentials":
        return ClientCredentialsGrant(endpoint)
    if settings.auth == "password":
        assert settings.username
        assert settings.password
        _log.warning(
            "salesforce.password_flow_deprecated",
            username=settings.username,
            advice="the username-password flow is blocked by default in orgs created since "
            "Summer '23; switch to the JWT bearer flow",
        )
        password = settings.password
        if settings.security_token is not None:
            password = Secret(
                password.reveal() + settings.security_token.reveal(), name="salesforce/password"
            )
        return PasswordGrant(endpoint, username=settings.username, password=password)
    return StoredOrSettingRefreshGrant(endpoint, settings.refresh_token)


def authorization_flow(
    settings: SalesforceSettings,
    client: httpx2.AsyncClient,
    clock: Clock,
    *,
    redirect_uri: str,
    scopes: tuple[str, ...] = ("api", "refresh_token"),
) -> AuthorizationCodeFlow:
    """The web server flow with PKCE against the org's login host (the connect step).

    Send the user to ``flow.authorization_url().url``; on the callback, ``exchange_code`` and
    store the result with ``TokenManager.install`` under the connector's credential name.
    """
    if settings.client_id is None:
        raise AuthenticationFailed("the web server flow needs the connected app's client_id")
    return AuthorizationCodeFlow(
        token_endpoint(settings, client, clock),
        authorize_url=settings.login_url + "/services/oauth2/authorize",
        client_id=settings.client_id,
        redirect_uri=redirect_uri,
        scopes=scopes,
    )


class SalesforceSessionAuth(ManagedTokenAuth):
    """``Authorization: Bearer`` from the token manager; one refresh on ``INVALID_SESSION_ID``.

    Bodies that can be replayed (marked ``replayable``) are streamed, not buffered.
    """

    def __init__(
        self, manager: TokenManager, tenant: str, credential: str, *, grant: TokenGrant
    ) -> None:
        super().__init__(
            manager,
            tenant,
            credential,
            check=SALESFORCE_INVALID_SESSION,
            grant=grant,
            connector="salesforce",
        )

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        if not getattr(getattr(request.stream, "_stream", None), "replayable", False):
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
                "Salesforce rejected a freshly refreshed session (INVALID_SESSION_ID)",
                connector=self.connector,
                tenant=self.tenant,
                status=response.status_code,
                provider_code="INVALID_SESSION_ID",
                hint="check that the user is active and the connected app is approved for it",
            )

"""OAuth 2.0 grants: how a token set is obtained or renewed.

A :class:`TokenGrant` turns the current token set (maybe ``None``) into a new one with one call to
a :class:`~connectors.auth.endpoint.TokenEndpoint`. The token manager decides *when* to call it
(single-flight, under a lease) and persists the result; grants only know the protocol:

- :class:`RefreshTokenGrant` (RFC 6749 §6), including providers that rotate the refresh token on
  every use (Slack, Salesforce with rotation on): the new refresh token replaces the old;
- :class:`ClientCredentialsGrant` (§4.4) and :class:`JwtBearerGrant` (RFC 7523, as Salesforce's
  server-to-server flow) simply run again, they need no stored token;
- :class:`PasswordGrant` (§4.3), deprecated by the OAuth 2.0 Security BCP: it logs a warning;
- :class:`AuthorizationCodeFlow` (§4.1 with PKCE) is the interactive connect step: it builds the
  authorisation URL and exchanges the code; later renewals use :class:`RefreshTokenGrant`.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Protocol, runtime_checkable
from urllib.parse import urlencode, urlsplit

import structlog

from connectors.auth.endpoint import TokenEndpoint
from connectors.auth.jwt import JwtSigner
from connectors.auth.pkce import generate_code_verifier, s256_challenge, validate_code_verifier
from connectors.auth.tokens import TokenSet
from connectors.errors import DefinitionError, ReauthorizationRequired
from connectors.secrets import Secret

__all__ = [
    "JWT_BEARER_GRANT_TYPE",
    "AuthorizationCodeFlow",
    "AuthorizationRequest",
    "ClientCredentialsGrant",
    "JwtBearerGrant",
    "PasswordGrant",
    "RefreshTokenGrant",
    "TokenGrant",
]

JWT_BEARER_GRANT_TYPE: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"

_log = structlog.get_logger("connectors.auth")


@runtime_checkable
class TokenGrant(Protocol):
    """Obtains a new token set; ``current`` is the freshest stored one (``None`` if none)."""

    async def obtain(self, current: TokenSet | None) -> TokenSet:
        """One token endpoint call. Raises the typed errors of :class:`TokenEndpoint`."""
        ...


def _scope_param(scopes: Iterable[str], separator: str = " ") -> dict[str, str]:
    joined = separator.join(sorted(set(scopes)))
    return {"scope": joined} if joined else {}


class RefreshTokenGrant:
    """``grant_type=refresh_token`` with the stored refresh token.

    A response that carries a ``refresh_token`` rotates it; one that does not keeps the old one
    (RFC 6749 §6). Without a stored refresh token there is nothing to renew with:
    :class:`ReauthorizationRequired`.
    """

    def __init__(self, endpoint: TokenEndpoint, *, scopes: Iterable[str] = ()) -> None:
        self.endpoint = endpoint
        self.scopes = frozenset(scopes)

    async def obtain(self, current: TokenSet | None) -> TokenSet:
        if current is None or current.refresh_token is None:
            raise ReauthorizationRequired(
                "no refresh token is stored for this credential",
                connector=self.endpoint.connector,
                provider_code="no_refresh_token",
                hint="connect the credential (authorisation code flow) to obtain one",
            )
        form = {"grant_type": "refresh_token", "refresh_token": current.refresh_token.reveal()}
        form.update(_scope_param(self.scopes))
        return await self.endpoint.request(form, previous=current)

    def __repr__(self) -> str:
        return f"RefreshTokenGrant({self.endpoint!r})"


class ClientCredentialsGrant:
    """``grant_type=client_credentials``: the client authenticates as itself; no refresh token."""

    def __init__(
        self,
        endpoint: TokenEndpoint,
        *,
        scopes: Iterable[str] = (),
        extra: Mapping[str, str] | None = None,
    ) -> None:
        if endpoint.credentials is None or endpoint.credentials.method == "none":
            raise DefinitionError("the client credentials grant needs a client id and secret")
        self.endpoint = endpoint
        self.scopes = frozenset(scopes)
        self.extra = dict(extra or {})

    async def obtain(self, current: TokenSet | None) -> TokenSet:
        form = {"grant_type": "client_credentials", **self.extra}
        form.update(_scope_param(self.scopes))
        return await self.endpoint.request(form, previous=None)

    def __repr__(self) -> str:
        return f"ClientCredentialsGrant({self.endpoint!r})"


class JwtBearerGrant:
    """RFC 7523 §2.1: ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer&assertion=<JWT>``.

    For Salesforce: ``iss`` = the connected app's consumer key, ``sub`` = the username, ``aud`` =
    the login host (``https://login.salesforce.com`` or ``https://test.salesforce.com``), RS256,
    ``exp`` three minutes ahead — :meth:`salesforce` builds exactly that. Each call signs a new
    assertion.
    """

    def __init__(self, endpoint: TokenEndpoint, signer: JwtSigner) -> None:
        if signer.issuer is None or signer.subject is None or signer.audience is None:
            raise DefinitionError("a JWT bearer assertion needs iss, sub and aud claims")
        self.endpoint = endpoint
        self.signer = signer

    @classmethod
    def salesforce(
        cls,
        endpoint: TokenEndpoint,
        *,
        client_id: str,
        username: str,
        private_key: Secret | bytes,
        login_url: str = "https://login.salesforce.com",
    ) -> JwtBearerGrant:
        """The Salesforce JWT bearer flow (RS256, assertion valid for 3 minutes)."""
        parts = urlsplit(login_url)
        audience = f"{parts.scheme}://{parts.netloc}"
        signer = JwtSigner(
            private_key,
            algorithm="RS256",
            issuer=client_id,
            subject=username,
            audience=audience,
            lifetime=180.0,
            clock=endpoint.clock,
        )
        return cls(endpoint, signer)

    async def obtain(self, current: TokenSet | None) -> TokenSet:
        assertion = self.signer.sign(self.endpoint.clock.time())
        form = {"grant_type": JWT_BEARER_GRANT_TYPE, "assertion": assertion.reveal()}
        return await self.endpoint.request(form, previous=None, grant="jwt-bearer")

    def __repr__(self) -> str:
        return f"JwtBearerGrant({self.endpoint!r}, {self.signer!r})"


class PasswordGrant:
    """``grant_type=password`` (deprecated: the client sees the user's password).

    Kept for providers and orgs that still require it; constructing one logs a warning, and
    Salesforce blocks it by default for orgs created since Summer '23.
    """

    def __init__(
        self,
        endpoint: TokenEndpoint,
        *,
        username: str,
        password: Secret,
        scopes: Iterable[str] = (),
    ) -> None:
        if not isinstance(password, Secret):
            raise TypeError("PasswordGrant needs the password as a Secret")
        self.endpoint = endpoint
        self.username = username
        self._password = password
        self.scopes = frozenset(scopes)
        _log.warning(
            "oauth2.password_grant_deprecated",
            connector=endpoint.connector,
            token_url=endpoint.url,
            advice="use the authorization code (PKCE), JWT bearer or client credentials grant",
        )

    async def obtain(self, current: TokenSet | None) -> TokenSet:
        form = {
            "grant_type": "password",
            "username": self.username,
            "password": self._password.reveal(),
        }
        form.update(_scope_param(self.scopes))
        return await self.endpoint.request(form, previous=None)

    def __repr__(self) -> str:
        return f"PasswordGrant({self.endpoint!r}, username={self.username!r})"


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """Where to send the user, and what to keep until the callback (``state``, ``verifier``)."""

    url: str
    state: str
    code_verifier: Secret


class AuthorizationCodeFlow:
    """The interactive connect step: authorisation URL with state + S256 challenge, code exchange.

    ``scope_separator`` is ``" "`` per RFC 6749; Slack's authorize URL uses ``","``.
    ``extra_params`` adds provider parameters (Slack ``user_scope``, Salesforce ``prompt``).
    """

    def __init__(
        self,
        endpoint: TokenEndpoint,
        *,
        authorize_url: str,
        client_id: str,
        redirect_uri: str,
        scopes: Iterable[str] = (),
        scope_separator: str = " ",
        extra_params: Mapping[str, str] | None = None,
    ) -> None:
        if not authorize_url.startswith(("https://", "http://")):
            raise DefinitionError(f"authorize URL {authorize_url!r} is not an http(s) URL")
        self.endpoint = endpoint
        self.authorize_url = authorize_url
        self.client_id = client_id
        self.redirect_uri = redirect_uri
        self.scopes = frozenset(scopes)
        self.scope_separator = scope_separator
        self.extra_params = dict(extra_params or {})

    def authorization_url(
        self, *, state: str | None = None, code_verifier: Secret | None = None
    ) -> AuthorizationRequest:
        """Build the URL to redirect the user to (pure apart from generating state/verifier)."""
        state = state or secrets.token_urlsafe(24)
        verifier = code_verifier or generate_code_verifier()
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            **_scope_param(self.scopes, self.scope_separator),
            "state": state,
            "code_challenge": s256_challenge(verifier),
            "code_challenge_method": "S256",
            **self.extra_params,
        }
        separator = "&" if "?" in self.authorize_url else "?"
        return AuthorizationRequest(
            url=f"{self.authorize_url}{separator}{urlencode(params)}",
            state=state,
            code_verifier=verifier,
        )

    async def exchange_code(self, code: str | Secret, code_verifier: Secret | str) -> TokenSet:
        """Trade the callback's ``code`` (with the verifier kept since the redirect) for tokens."""
        clear_code = code.reveal() if isinstance(code, Secret) else code
        if not clear_code:
            raise DefinitionError("the authorisation callback carried no code")
        form = {
            "grant_type": "authorization_code",
            "code": clear_code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": validate_code_verifier(code_verifier),
        }
        if self.endpoint.credentials is None:
            form["client_id"] = self.client_id
        return await self.endpoint.request(form, previous=None)

    def __repr__(self) -> str:
        return (
            f"AuthorizationCodeFlow(authorize_url={self.authorize_url!r}, "
            f"client_id={self.client_id!r})"
        )

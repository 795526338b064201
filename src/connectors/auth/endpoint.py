"""One OAuth 2.0 token endpoint: the form POST, client authentication, and error translation.

Every grant in :mod:`connectors.auth.grants` ends here. The HTTP call goes through an injected
:class:`httpx2.AsyncClient`, so tests drive it with ``httpx2.MockTransport`` or the emulators over
``httpx2.ASGITransport``. Foreign failures are translated once, here, into the error tree:

=============================================  ===========================================
token endpoint says                            raised
=============================================  ===========================================
``invalid_grant`` (and Slack's equivalents)     :class:`ReauthorizationRequired`
``invalid_client``, ``unauthorized_client``...  :class:`AuthenticationFailed`
``invalid_scope``                               :class:`ScopeDenied`
HTTP 429                                        :class:`RateLimited` (``retry_after``)
HTTP 5xx / 408                                  :class:`ServiceUnavailable`
connect error / timeout                         :class:`ConnectionFailed` / :class:`Timeout`
=============================================  ===========================================

Error messages carry the provider's error code and a redacted, truncated description: never a
token, secret or assertion.
"""

from __future__ import annotations

import json
from base64 import b64encode
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias
from urllib.parse import quote

import httpx2

from connectors.auth.tokens import TokenSet
from connectors.clock import Clock, system_clock
from connectors.errors import (
    AuthenticationFailed,
    ConnectionFailed,
    ConnectorError,
    DefinitionError,
    RateLimited,
    ReauthorizationRequired,
    ScopeDenied,
    ServiceUnavailable,
    Timeout,
)
from connectors.secrets import MASK, Secret, live_secret_values

__all__ = [
    "REAUTH_ERRORS",
    "ClientAuthMethod",
    "ClientCredentials",
    "TokenEndpoint",
    "parse_retry_after",
]

ClientAuthMethod: TypeAlias = Literal["client_secret_basic", "client_secret_post", "none"]

#: Error codes meaning "the grant is gone; a human must connect again" (RFC 6749 ``invalid_grant``
#: plus Slack's names for a dead refresh token).
REAUTH_ERRORS: Final = frozenset(
    {"invalid_grant", "invalid_refresh_token", "token_revoked", "invalid_code", "code_already_used"}
)
_SCOPE_ERRORS: Final = frozenset({"invalid_scope"})
_DESCRIPTION_LIMIT: Final = 200


@dataclass(frozen=True, slots=True)
class ClientCredentials:
    """The OAuth client: id, secret, and how the secret is presented (RFC 6749 §2.3.1).

    ``client_secret_basic`` sends ``Authorization: Basic`` (Slack's SDK, Salesforce both accept
    it); ``client_secret_post`` puts both in the form; ``none`` sends only ``client_id`` (public
    clients, PKCE).
    """

    client_id: str
    client_secret: Secret | None = None
    method: ClientAuthMethod = "client_secret_basic"

    def __post_init__(self) -> None:
        if self.method != "none" and self.client_secret is None:
            raise DefinitionError(
                f"client authentication {self.method!r} needs a client secret",
                hint="set the client secret or use method 'none' for a public client",
            )


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header given in seconds (dates are left to the caller)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return max(seconds, 0.0) if seconds == seconds else None


def _redact(text: str) -> str:
    """Mask every live secret value and truncate (providers sometimes echo what they got)."""
    for value in live_secret_values():
        if value and value in text:
            text = text.replace(value, MASK)
    text = " ".join(text.split())
    if len(text) > _DESCRIPTION_LIMIT:
        text = text[: _DESCRIPTION_LIMIT - 1] + "…"
    return text


class TokenEndpoint:
    """POSTs grant forms to ``url`` and turns the answer into a :class:`TokenSet` or an error.

    ``connector`` names the provider in errors (``salesforce``, ``slack``).
    """

    def __init__(
        self,
        url: str,
        *,
        client: httpx2.AsyncClient,
        credentials: ClientCredentials | None = None,
        clock: Clock = system_clock,
        connector: str | None = None,
    ) -> None:
        if not url.startswith(("https://", "http://")):
            raise DefinitionError(f"token endpoint {url!r} is not an http(s) URL")
        self.url = url
        self.credentials = credentials
        self.connector = connector
        self._client = client
        self._clock = clock

    @property
    def clock(self) -> Clock:
        return self._clock

    def build_request(self, form: Mapping[str, str]) -> httpx2.Request:
        """The token request for ``form`` with client authentication applied (pure)."""
        data = dict(form)
        headers = {"Accept": "application/json"}
        creds = self.credentials
        if creds is not None:
            if creds.method == "client_secret_basic":
                assert creds.client_secret is not None
                # RFC 6749 §2.3.1: form-urlencode id and secret before joining them.
                user = quote(creds.client_id, safe="")
                pair = f"{user}:{quote(creds.client_secret.reveal(), safe='')}"
                headers["Authorization"] = "Basic " + b64encode(pair.encode()).decode("ascii")
            else:
                data.setdefault("client_id", creds.client_id)
                if creds.method == "client_secret_post":
                    assert creds.client_secret is not None
                    data["client_secret"] = creds.client_secret.reveal()
        return httpx2.Request("POST", self.url, data=data, headers=headers)

    async def request(
        self, form: Mapping[str, str], *, previous: TokenSet | None = None, grant: str = ""
    ) -> TokenSet:
        """Send ``form`` and parse the token set; ``previous`` fills fields a refresh omits."""
        request = self.build_request(form)
        grant = grant or form.get("grant_type", "")
        try:
            response = await self._client.send(request)
            try:
                await response.aread()
            finally:
                await response.aclose()
        except httpx2.TimeoutException:
            raise Timeout(
                f"the token endpoint timed out ({grant})", connector=self.connector
            ) from None
        except httpx2.ConnectError:
            raise ConnectionFailed(
                f"could not connect to the token endpoint ({grant})", connector=self.connector
            ) from None
        except httpx2.HTTPError as exc:
            raise ServiceUnavailable(
                f"the token request failed: {type(exc).__name__} ({grant})",
                connector=self.connector,
            ) from None
        return self.parse_response(response, previous=previous, grant=grant)

    def parse_response(
        self, response: httpx2.Response, *, previous: TokenSet | None = None, grant: str = ""
    ) -> TokenSet:
        """The token set in a (read) token response, or the typed error it means (pure)."""
        status = response.status_code
        body = _json_object(response)
        if status == 429:
            raise RateLimited(
                "the token endpoint is rate limiting",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                connector=self.connector,
                status=status,
                provider_code=_error_code(body),
            )
        if status >= 500 or status == 408:
            raise ServiceUnavailable(
                f"the token endpoint answered HTTP {status}",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                connector=self.connector,
                status=status,
                provider_code=_error_code(body),
            )
        code = _error_code(body)
        if code is not None or status >= 400:
            raise self._error(code, body, status, grant)
        if body is None:
            raise AuthenticationFailed(
                "the token endpoint answered without a JSON object",
                connector=self.connector,
                status=status,
            )
        try:
            return TokenSet.from_response(body, self._clock.time(), previous=previous)
        except ConnectorError as exc:
            raise exc.with_context(connector=self.connector) from None

    def _error(
        self, code: str | None, body: Mapping[str, object] | None, status: int, grant: str
    ) -> ConnectorError:
        description = None
        if body is not None:
            raw = body.get("error_description")
            if isinstance(raw, str) and raw:
                description = _redact(raw)
        what = code or f"HTTP {status}"
        message = f"the token endpoint refused the {grant or 'token'} grant: {what}"
        if description:
            message += f" ({description})"
        if code in REAUTH_ERRORS:
            return ReauthorizationRequired(
                message,
                connector=self.connector,
                status=status,
                provider_code=code,
                hint="the refresh token or grant is no longer valid; connect the credential again",
            )
        if code in _SCOPE_ERRORS:
            return ScopeDenied(message, connector=self.connector, status=status, provider_code=code)
        return AuthenticationFailed(
            message,
            connector=self.connector,
            status=status,
            provider_code=code,
            hint=("check the client id and secret" if code and "client" in code else None),
        )

    def __repr__(self) -> str:
        client_id = self.credentials.client_id if self.credentials else None
        return f"TokenEndpoint(url={self.url!r}, client_id={client_id!r})"


def _json_object(response: httpx2.Response) -> Mapping[str, object] | None:
    try:
        body = json.loads(response.content or b"null")
    except (ValueError, UnicodeDecodeError):
        return None
    return body if isinstance(body, dict) else None


def _error_code(body: Mapping[str, object] | None) -> str | None:
    """RFC 6749 ``error``, or Slack's ``{"ok": false, "error": ...}`` envelope."""
    if body is None:
        return None
    error = body.get("error")
    if isinstance(error, str) and error:
        return error
    if body.get("ok") is False:
        return "unknown_error"
    return None

"""XOAUTH2 (Gmail, Microsoft 365): the SASL string, its error challenge, and the token source.

The initial client response is the same for IMAP and SMTP and both providers::

    "user=" + user + "\\x01auth=Bearer " + token + "\\x01\\x01"      (then base64)

On a rejected token the server answers with a *challenge* carrying base64 JSON such as
``{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}``; the client must answer
with an empty line to get the final NO/535. :class:`XOAuth2Mechanism` does that for IMAP
(``IMAPClient.sasl_login``); aiosmtplib's ``auth_xoauth2`` does it for SMTP.

:class:`TokenSource` hands out the access token: from the framework's
:class:`~connectors.auth.TokenManager` (``oauth_credential``) or from a static ``access_token``
setting. After a rejected login the connector asks :meth:`TokenSource.refreshed` once for a new
token (single-flight in the token manager) and retries the login once.
"""

from __future__ import annotations

import base64
import contextlib
import json
from dataclasses import dataclass

from connectors.auth.manager import TokenManager
from connectors.auth.tokens import TokenSet
from connectors.errors import ConfigurationError, InvalidSetting
from connectors.secrets import Secret

__all__ = [
    "TokenSource",
    "XOAuth2Error",
    "XOAuth2Mechanism",
    "parse_error_challenge",
    "sasl_string",
]


def sasl_string(user: str, token: Secret) -> str:
    """The XOAUTH2 initial response, *before* base64 (IMAP libraries encode it themselves)."""
    if "\x01" in user or not user:
        raise InvalidSetting("username", user, "a non-empty user name without \\x01")
    value = token.reveal()
    if "\x01" in value or not value:
        raise ConfigurationError("the OAuth access token is empty or contains \\x01")
    return f"user={user}\x01auth=Bearer {value}\x01\x01"


@dataclass(frozen=True, slots=True)
class XOAuth2Error:
    """What the server's error challenge said (no token in it)."""

    status: str | None
    schemes: str | None
    scope: str | None


def parse_error_challenge(data: bytes) -> XOAuth2Error | None:
    """Parse an XOAUTH2 error challenge (base64 JSON, or JSON already decoded).

    ``None`` when ``data`` is not one."""
    text = data.strip()
    if not text:
        return None
    candidates = [text]
    with contextlib.suppress(ValueError):
        candidates.insert(0, base64.b64decode(text, validate=True))
    for candidate in candidates:
        try:
            body = json.loads(candidate)
        except (ValueError, UnicodeDecodeError):
            continue
        if isinstance(body, dict):
            return XOAuth2Error(
                status=_str(body.get("status")),
                schemes=_str(body.get("schemes")),
                scope=_str(body.get("scope")),
            )
    return None


def _str(value: object) -> str | None:
    return None if value is None else str(value)


class XOAuth2Mechanism:
    """A SASL callable for ``IMAPClient.sasl_login("XOAUTH2", ...)``.

    First call (empty challenge): the initial response. Any later call is the server's error
    challenge: it is recorded in :attr:`error` and answered with an empty response, as the
    protocol requires. The repr never shows the token.
    """

    __slots__ = ("_calls", "_response", "error")

    def __init__(self, user: str, token: Secret) -> None:
        self._response = sasl_string(user, token)
        self._calls = 0
        self.error: XOAuth2Error | None = None

    def __call__(self, challenge: bytes) -> bytes | str:
        self._calls += 1
        if self._calls == 1:
            return self._response
        self.error = parse_error_challenge(challenge) or XOAuth2Error(None, None, None)
        return b""

    def __repr__(self) -> str:
        return "XOAuth2Mechanism(<token hidden>)"


class TokenSource:
    """Access tokens for XOAUTH2 for one tenant: from the token manager or a static secret."""

    __slots__ = ("_credential", "_manager", "_static", "_tenant")

    def __init__(
        self,
        *,
        tenant: str,
        manager: TokenManager | None,
        credential: str | None,
        static: Secret | None,
    ) -> None:
        if credential is not None and manager is None:
            raise ConfigurationError(
                f"oauth_credential {credential!r} is set but the Hub has no token manager",
                hint="configure the Hub's credential store, or use a static access_token",
            )
        if credential is None and static is None:
            raise ConfigurationError(
                "XOAUTH2 needs oauth_credential (token manager) or access_token",
            )
        self._tenant = tenant
        self._manager = manager
        self._credential = credential
        self._static = static

    async def current(self) -> Secret:
        """The token to log in with now (cached or renewed by the token manager)."""
        if self._manager is not None and self._credential is not None:
            token = await self._manager.get_token(self._tenant, self._credential)
            return token.access_token
        assert self._static is not None
        return self._static

    async def refreshed(self, stale: Secret) -> Secret | None:
        """A new token after ``stale`` was rejected; ``None`` when nothing can renew it."""
        if self._manager is None or self._credential is None:
            return None
        token = await self._manager.refresh(
            self._tenant, self._credential, stale=TokenSet(access_token=stale)
        )
        if token.access_token == stale:
            return None
        return token.access_token

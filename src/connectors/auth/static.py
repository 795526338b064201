"""Auth flows with a fixed credential: API key, HTTP Basic, bearer token.

Each is an :class:`httpx2.Auth` whose flow only sets a header (or a query parameter) and yields
the request once, so it serves sync and async clients alike. The clear value is revealed at the
moment it goes onto the request and is never kept in a clear attribute, so ``repr`` and
``vars()`` of a flow show nothing secret.
"""

from __future__ import annotations

from base64 import b64encode
from collections.abc import Generator

import httpx2

from connectors.errors import DefinitionError
from connectors.secrets import Secret

__all__ = ["ApiKeyAuth", "BasicAuth", "BearerAuth"]


class ApiKeyAuth(httpx2.Auth):
    """Send an API key in a header (default ``X-API-Key``) or, if ``query`` is set, a parameter.

    ``prefix`` is prepended to the header value (``"Token "``, ``"ApiKey "``). A key in the query
    string ends up in URLs, which proxies and access logs record: prefer a header when the
    provider allows it.
    """

    def __init__(
        self,
        key: Secret,
        *,
        header: str | None = "X-API-Key",
        query: str | None = None,
        prefix: str = "",
    ) -> None:
        if not isinstance(key, Secret):
            raise TypeError("ApiKeyAuth needs the key as a Secret")
        if query is not None:
            header = None
        if not header and not query:
            raise DefinitionError("api key auth needs a header name or a query parameter name")
        if query is not None and prefix:
            raise DefinitionError("api key auth: 'prefix' applies to headers, not query parameters")
        self._key = key
        self.header = header
        self.query = query
        self.prefix = prefix

    def auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        if self.query is not None:
            request.url = request.url.copy_set_param(self.query, self._key.reveal())
        else:
            assert self.header is not None
            request.headers[self.header] = f"{self.prefix}{self._key.reveal()}"
        yield request

    def __repr__(self) -> str:
        where = f"query={self.query!r}" if self.query else f"header={self.header!r}"
        return f"ApiKeyAuth({where}, key={self._key!r})"


class BasicAuth(httpx2.Auth):
    """HTTP Basic (RFC 7617): ``Authorization: Basic base64(username:password)``."""

    def __init__(self, username: str, password: Secret) -> None:
        if not isinstance(password, Secret):
            raise TypeError("BasicAuth needs the password as a Secret")
        if ":" in username:
            raise DefinitionError("a Basic auth username cannot contain ':' (RFC 7617)")
        self.username = username
        self._password = password

    def auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        pair = f"{self.username}:{self._password.reveal()}".encode()
        request.headers["Authorization"] = f"Basic {b64encode(pair).decode('ascii')}"
        yield request

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password={self._password!r})"


class BearerAuth(httpx2.Auth):
    """A fixed bearer token (RFC 6750): ``Authorization: Bearer <token>``."""

    def __init__(self, token: Secret, *, scheme: str = "Bearer") -> None:
        if not isinstance(token, Secret):
            raise TypeError("BearerAuth needs the token as a Secret")
        self._token = token
        self.scheme = scheme

    def auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        request.headers["Authorization"] = f"{self.scheme} {self._token.reveal()}"
        yield request

    def __repr__(self) -> str:
        return f"BearerAuth(scheme={self.scheme!r}, token={self._token!r})"

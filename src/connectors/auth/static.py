"""Auth flows with a fixed credential: API key, HTTP Basic, bearer token.

Each is an :class:`EditingAuth`: an :class:`httpx2.Auth` whose flow only sets a header (or a
query parameter) and yields the request once, so it serves sync and async clients alike. The
clear value is revealed at the moment it goes onto the request and is never kept in a clear
attribute, so ``repr`` and ``vars()`` of a flow show nothing secret.

A flow that only edits the request needs no generator to drive: :func:`request_editor` hands a
client the edit itself (``connectors.http`` calls it instead of running the flow, ~5 µs a
request less), unless a subclass changed the flow, which is then driven as usual.
"""

from __future__ import annotations

import abc
from base64 import b64encode
from collections.abc import Callable, Generator

import httpx2

from connectors.errors import DefinitionError
from connectors.secrets import Secret

__all__ = [
    "ApiKeyAuth",
    "BasicAuth",
    "BearerAuth",
    "EditingAuth",
    "RequestEditor",
    "request_editor",
]

#: Puts the credential on a request, in place (what an editing flow does before it yields).
RequestEditor = Callable[[httpx2.Request], None]


class EditingAuth(httpx2.Auth, abc.ABC):
    """An auth flow that edits the request and needs nothing back: implement :meth:`edit`."""

    @abc.abstractmethod
    def edit(self, request: httpx2.Request) -> None:
        """Put the credential on ``request``, in place."""

    def auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        self.edit(request)
        yield request

    def request_editor(self) -> RequestEditor | None:
        """:meth:`edit`, when running the flow amounts to exactly that: no subclass replaced a
        flow method or asked for a body."""
        cls = type(self)
        if (
            cls.auth_flow is EditingAuth.auth_flow
            and cls.async_auth_flow is httpx2.Auth.async_auth_flow
            and cls.sync_auth_flow is httpx2.Auth.sync_auth_flow
            and not self.requires_request_body
            and not self.requires_response_body
        ):
            return self.edit
        return None


def request_editor(auth: httpx2.Auth | None) -> RequestEditor | None:
    """The edit that running ``auth``'s flow amounts to, if it offers one (``request_editor``),
    else ``None``: the flow must be driven."""
    offer = getattr(auth, "request_editor", None)
    return offer() if callable(offer) else None


class ApiKeyAuth(EditingAuth):
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

    def edit(self, request: httpx2.Request) -> None:
        if self.query is not None:
            request.url = request.url.copy_set_param(self.query, self._key.reveal())
        else:
            assert self.header is not None
            request.headers[self.header] = f"{self.prefix}{self._key.reveal()}"

    def __repr__(self) -> str:
        where = f"query={self.query!r}" if self.query else f"header={self.header!r}"
        return f"ApiKeyAuth({where}, key={self._key!r})"


class BasicAuth(EditingAuth):
    """HTTP Basic (RFC 7617): ``Authorization: Basic base64(username:password)``."""

    def __init__(self, username: str, password: Secret) -> None:
        if not isinstance(password, Secret):
            raise TypeError("BasicAuth needs the password as a Secret")
        if ":" in username:
            raise DefinitionError("a Basic auth username cannot contain ':' (RFC 7617)")
        self.username = username
        self._password = password

    def edit(self, request: httpx2.Request) -> None:
        pair = f"{self.username}:{self._password.reveal()}".encode()
        request.headers["Authorization"] = f"Basic {b64encode(pair).decode('ascii')}"

    def __repr__(self) -> str:
        return f"BasicAuth(username={self.username!r}, password={self._password!r})"


class BearerAuth(EditingAuth):
    """A fixed bearer token (RFC 6750): ``Authorization: Bearer <token>``."""

    def __init__(self, token: Secret, *, scheme: str = "Bearer") -> None:
        if not isinstance(token, Secret):
            raise TypeError("BearerAuth needs the token as a Secret")
        self._token = token
        self.scheme = scheme

    def edit(self, request: httpx2.Request) -> None:
        request.headers["Authorization"] = f"{self.scheme} {self._token.reveal()}"

    def __repr__(self) -> str:
        return f"BearerAuth(scheme={self.scheme!r}, token={self._token!r})"

"""Keep the bot token on Slack's Web API: an auth flow applied only under one URL prefix.

The connector's HTTP client also POSTs file bytes to pre-signed upload URLs and payloads to
incoming-webhook URLs. Neither needs the token, and a token must never travel to a URL that
does not need it, so :class:`ScopedAuth` runs the wrapped flow (bearer or managed token) only
for requests under the Web API base URL and passes every other request through untouched (and
unbuffered, so a streamed upload stays streamed).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator

import httpx2

from connectors.auth.static import RequestEditor, request_editor

__all__ = ["ScopedAuth"]


class ScopedAuth(httpx2.Auth):
    """Apply ``inner`` to requests whose URL starts with ``prefix``; leave others alone."""

    def __init__(self, inner: httpx2.Auth, prefix: str) -> None:
        self.inner = inner
        self.prefix = prefix
        url = httpx2.URL(prefix)
        self._origin = (url.scheme, url.host, url.port)
        self._path = url.path

    def applies(self, request: httpx2.Request) -> bool:
        """Whether ``request`` goes to the prefix's origin, under its path."""
        url = request.url
        return (url.scheme, url.host, url.port) == self._origin and url.path.startswith(self._path)

    def request_editor(self) -> RequestEditor | None:
        """The inner flow's edit, applied under the prefix only (``None`` if it has none)."""
        inner = request_editor(self.inner)
        if inner is None:
            return None

        def edit(request: httpx2.Request) -> None:
            if self.applies(request):
                inner(request)

        return edit

    def sync_auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        if not self.applies(request):
            yield request
            return
        yield from self.inner.sync_auth_flow(request)

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        if not self.applies(request):
            yield request
            return
        flow = self.inner.async_auth_flow(request)
        try:
            outgoing = await flow.__anext__()
            while True:
                response = yield outgoing
                try:
                    outgoing = await flow.asend(response)
                except StopAsyncIteration:
                    return
        finally:
            await flow.aclose()

    def __repr__(self) -> str:
        return f"ScopedAuth({self.inner!r}, prefix={self.prefix!r})"

"""A transport that connects only to addresses the SSRF guard vetted: DNS resolved once, pinned.

::

    PinnedTransport.handle_async_request(request)
        guard.vet(url)            one DNS lookup, every address checked (BlockedDestination)
        pins[(host, port)] = vetted addresses        (a context variable, this request only)
        httpcore2 pool ──▶ PinnedNetworkBackend.connect_tcp(host, port)
                               connects to the pinned addresses; never resolves ``host``

The URL, and so the ``Host`` header and the TLS SNI name and certificate check, keep the original
host name: httpcore2 calls ``start_tls(server_hostname=<url host>)`` on the stream the backend
returns. A pooled keep-alive connection was made to a vetted address for the same origin, so
reusing it is safe; every request is vetted again (DNS may change between retries).

httpx2 has no public knob for the network backend, so :class:`PinnedTransport` builds its own
``httpcore2.AsyncConnectionPool`` with the pinned backend in place of the one
``httpx2.AsyncHTTPTransport`` creates (the ``_pool`` attribute; httpx2 and httpcore2 are pinned in
the lock file). Environment proxies are ignored (``trust_env=False``): a proxy would bypass the
pin. Redirects are the client's business; :func:`pinned_transport_factory` is meant for clients
with ``follow_redirects=False`` (a 3xx is a failed webhook delivery), and a client that follows
redirects still vets each hop here.
"""

from __future__ import annotations

import contextvars
import ssl
from collections.abc import Iterable, Mapping
from typing import Final

import httpcore2
import httpx2

from connectors.http.ssrf import IPAddress, SsrfGuard

__all__ = ["PinnedNetworkBackend", "PinnedTransport", "pinned_transport_factory"]

_Pins = Mapping[tuple[str, int], tuple[IPAddress, ...]]
_pins: Final[contextvars.ContextVar[_Pins | None]] = contextvars.ContextVar(
    "connectors_pinned_addresses", default=None
)


def _key(host: str, port: int) -> tuple[str, int]:
    host = host.lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


class PinnedNetworkBackend(httpcore2.AsyncNetworkBackend):
    """An httpcore2 network backend that dials only the addresses pinned for the request.

    ``inner`` does the actual I/O (default: httpcore2's AnyIO backend); tests pass a backend that
    records the address it is asked for, or maps a fake public address to a loopback server.
    A connection for which nothing was pinned is refused: this backend never resolves a name.
    """

    def __init__(self, inner: httpcore2.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner if inner is not None else httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - the httpcore2 interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore2._types.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        pins = _pins.get()
        addresses = None if pins is None else pins.get(_key(host, port))
        if not addresses:
            raise httpcore2.ConnectError(
                f"no vetted address for {host}:{port}; the pinned transport never resolves names"
            )
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address),
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - the httpcore2 interface
        socket_options: Iterable[httpcore2._types.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise httpcore2.ConnectError("the pinned transport does not connect to unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PinnedTransport(httpx2.AsyncHTTPTransport):
    """An ``httpx2`` transport that vets every request with ``guard`` and pins the connection.

    Raises :class:`~connectors.errors.BlockedDestination` (before any connection) for a refused
    URL, and :class:`~connectors.errors.ConnectionFailed` when the host does not resolve.
    """

    def __init__(
        self,
        guard: SsrfGuard,
        *,
        limits: httpx2.Limits = httpx2.Limits(),  # noqa: B008 - immutable value
        http2: bool = False,
        verify: ssl.SSLContext | bool = True,
        network_backend: httpcore2.AsyncNetworkBackend | None = None,
    ) -> None:
        super().__init__(verify=verify, trust_env=False, http2=http2, limits=limits)
        self.guard = guard
        self.backend = PinnedNetworkBackend(network_backend)
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=http2,
            network_backend=self.backend,
        )

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        target = await self.guard.vet(str(request.url))
        current = _pins.get() or {}
        token = _pins.set({**current, _key(target.host, target.port): target.addresses})
        try:
            return await super().handle_async_request(request)
        finally:
            _pins.reset(token)


def pinned_transport_factory(
    guard: SsrfGuard,
    *,
    verify: ssl.SSLContext | bool = True,
    network_backend: httpcore2.AsyncNetworkBackend | None = None,
) -> _Factory:
    """A :class:`~connectors.http.TransportFactory` building :class:`PinnedTransport`\\ s."""
    return _Factory(guard, verify, network_backend)


class _Factory:
    __slots__ = ("_backend", "_guard", "_verify")

    def __init__(
        self,
        guard: SsrfGuard,
        verify: ssl.SSLContext | bool,
        backend: httpcore2.AsyncNetworkBackend | None,
    ) -> None:
        self._guard = guard
        self._verify = verify
        self._backend = backend

    def __call__(self, *, limits: httpx2.Limits, http2: bool) -> httpx2.AsyncBaseTransport:
        return PinnedTransport(
            self._guard,
            limits=limits,
            http2=http2,
            verify=self._verify,
            network_backend=self._backend,
        )

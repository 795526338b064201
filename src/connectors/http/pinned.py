"""Transports that connect only to addresses the SSRF guard vetted: DNS resolved once, pinned.

::

    PinnedHttp1Transport / PinnedTransport .handle_async_request(request)
        guard.vet(url)            one DNS lookup, every address checked (BlockedDestination)
        pins[(host, port)] = vetted addresses        (a context variable, this request only)
        a new connection for (host, port) dials the pinned addresses; ``host`` is never resolved

Two of them: :class:`PinnedHttp1Transport` is the lean HTTP/1.1 transport
(:mod:`connectors.http.transport`, a third of httpcore2's CPU per request) dialing the pinned
addresses itself, and what :func:`pinned_transport_factory` builds for HTTP/1.1;
:class:`PinnedTransport` is httpx2's own transport over httpcore2 with
:class:`PinnedNetworkBackend` as its network backend, for HTTP/2 and for tests that bring an
httpcore2 backend.

The URL, and so the ``Host`` header and the TLS SNI name and certificate check, keep the original
host name (``server_hostname=<url host>`` on the connection to the pinned address). A pooled
keep-alive connection was made to a vetted address for the same origin, so reusing it is safe;
every request is vetted again (DNS may change between retries).

httpx2 has no public knob for the network backend, so :class:`PinnedTransport` builds its own
``httpcore2.AsyncConnectionPool`` with the pinned backend in place of the one
``httpx2.AsyncHTTPTransport`` creates (the ``_pool`` attribute; httpx2 and httpcore2 are pinned in
the lock file). Environment proxies are ignored (``trust_env=False``): a proxy would bypass the
pin. Redirects are the client's business; :func:`pinned_transport_factory` is meant for clients
with ``follow_redirects=False`` (a 3xx is a failed webhook delivery), and a client that follows
redirects still vets each hop here.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import ssl
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Final

import httpcore2
import httpx2

from connectors.http.ssrf import IPAddress, SsrfGuard
from connectors.http.transport import Http1Transport

__all__ = [
    "OpenConnection",
    "PinnedHttp1Transport",
    "PinnedNetworkBackend",
    "PinnedTransport",
    "pinned_transport_factory",
]

#: ``asyncio.open_connection``'s shape: the I/O seam of :class:`PinnedHttp1Transport`.
OpenConnection = Callable[..., Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]

_Pins = Mapping[tuple[str, int], tuple[IPAddress, ...]]
_pins: Final[contextvars.ContextVar[_Pins | None]] = contextvars.ContextVar(
    "connectors_pinned_addresses", default=None
)


def _key(host: str, port: int) -> tuple[str, int]:
    host = host.lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, port


_NOT_VETTED: Final = (
    "no vetted address for {host}:{port}; the pinned transport never resolves names"
)


def _pinned_for(host: str, port: int) -> tuple[IPAddress, ...]:
    """The addresses vetted for ``(host, port)`` by the request being sent (none outside one)."""
    pins = _pins.get()
    return () if pins is None else pins.get(_key(host, port), ())


async def _vetted(
    guard: SsrfGuard, request: httpx2.Request
) -> contextlib.AbstractContextManager[None]:
    """Vet ``request``'s URL (before any connection); the addresses stay pinned while the
    returned context is open."""
    target = await guard.vet(str(request.url))
    return _pinned({_key(target.host, target.port): target.addresses})


@contextlib.contextmanager
def _pinned(pins: _Pins) -> Iterator[None]:
    token = _pins.set({**(_pins.get() or {}), **pins})
    try:
        yield
    finally:
        _pins.reset(token)


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
        addresses = _pinned_for(host, port)
        if not addresses:
            raise httpcore2.ConnectError(_NOT_VETTED.format(host=host, port=port))
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
        with await _vetted(self.guard, request):
            return await super().handle_async_request(request)


class PinnedHttp1Transport(Http1Transport):
    """The lean HTTP/1.1 transport, vetting every request with ``guard`` and dialing only the
    addresses it vetted (in their order, the next when one refuses).

    Raises :class:`~connectors.errors.BlockedDestination` (before any connection) for a refused
    URL, and :class:`~connectors.errors.ConnectionFailed` when the host does not resolve.
    ``open_connection`` (``asyncio.open_connection``'s signature) is the I/O seam for tests.
    """

    def __init__(
        self,
        guard: SsrfGuard,
        *,
        limits: httpx2.Limits = httpx2.Limits(),  # noqa: B008 - immutable value
        verify: ssl.SSLContext | bool = True,
        open_connection: OpenConnection | None = None,
    ) -> None:
        super().__init__(limits=limits, verify=verify)
        self.guard = guard
        self._open_connection: OpenConnection = open_connection or asyncio.open_connection

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        with await _vetted(self.guard, request):
            return await super().handle_async_request(request)

    async def _dial(
        self, host: str, port: int, context: ssl.SSLContext | None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        addresses = _pinned_for(host, port)
        if not addresses:
            raise OSError(_NOT_VETTED.format(host=host, port=port))
        last: OSError | None = None
        for address in addresses:
            try:
                return await self._open_connection(
                    str(address),
                    port,
                    ssl=context,
                    server_hostname=host if context is not None else None,
                    limit=self._max_head,
                )
            except ssl.SSLError:
                raise  # the certificate is the host's: another address changes nothing
            except OSError as exc:
                last = exc
        assert last is not None
        raise last


def pinned_transport_factory(
    guard: SsrfGuard,
    *,
    verify: ssl.SSLContext | bool = True,
    network_backend: httpcore2.AsyncNetworkBackend | None = None,
    open_connection: OpenConnection | None = None,
) -> _Factory:
    """A :class:`~connectors.http.TransportFactory` building pinned transports: the lean
    :class:`PinnedHttp1Transport` for HTTP/1.1, :class:`PinnedTransport` for HTTP/2 or when an
    httpcore2 ``network_backend`` is given."""
    return _Factory(guard, verify, network_backend, open_connection)


class _Factory:
    __slots__ = ("_backend", "_guard", "_open", "_verify")

    def __init__(
        self,
        guard: SsrfGuard,
        verify: ssl.SSLContext | bool,
        backend: httpcore2.AsyncNetworkBackend | None,
        open_connection: OpenConnection | None,
    ) -> None:
        self._guard = guard
        self._verify = verify
        self._backend = backend
        self._open = open_connection

    def __call__(self, *, limits: httpx2.Limits, http2: bool) -> httpx2.AsyncBaseTransport:
        if not http2 and self._backend is None:
            return PinnedHttp1Transport(
                self._guard, limits=limits, verify=self._verify, open_connection=self._open
            )
        return PinnedTransport(
            self._guard,
            limits=limits,
            http2=http2,
            verify=self._verify,
            network_backend=self._backend,
        )

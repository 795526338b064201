"""The HTTP side of a delivery: pooled clients, SSRF-pinned connections, answer classification.

One :class:`WebhookSender` per delivery service keeps one pooled ``httpx2.AsyncClient`` per SSRF
policy (an endpoint's allowlist): every endpoint origin under that policy reuses the client's
keep-alive connections. Each request is still vetted (:class:`~connectors.http.pinned.
PinnedHttp1Transport`, the lean HTTP/1.1 transport: every resolved address checked, the
connection pinned to them); what is cached is the DNS answer, per host for ``dns_ttl`` seconds
(:class:`CachingResolver`), never the verdict, so a cached answer is checked against the
endpoint's policy on every request like a fresh one.

Given an httpcore2 ``network_backend`` (an I/O seam), the sender uses
:class:`~connectors.http.pinned.PinnedTransport` over httpcore2 instead. httpcore2 probes every
idle pooled connection ("has the server closed it?") each time a request
enters or leaves the pool, and its AnyIO stream finds the socket for that probe by building
AnyIO's whole attribute map (``getpeername`` included) per call: with a delivery worker's idle
keep-alive connections that cost more CPU than the request itself. :class:`ProbeCachingBackend`
keeps the socket of each stream it opens and answers the probe with one ``poll``; everything
else goes to the stream unchanged.
"""

from __future__ import annotations

import select
import ssl
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol

import httpcore2
import httpx2

from connectors.adapters.webhook.endpoints import Endpoint
from connectors.clock import Clock
from connectors.errors import BlockedDestination, ConnectorError
from connectors.http.pinned import PinnedHttp1Transport, PinnedTransport
from connectors.http.ssrf import Resolver, SsrfGuard, system_resolver
from connectors.resilience.retry import parse_retry_after

__all__ = [
    "EXCERPT_CHARS",
    "Answer",
    "CachingResolver",
    "Outcome",
    "ProbeCachingBackend",
    "WebhookSender",
]

#: The longest answer excerpt kept in the attempts log.
EXCERPT_CHARS: Final = 500

Outcome = Literal["success", "failure", "blocked", "gone", "aborted", "circuit_open"]

_PolicyKey = tuple[tuple[str, ...], tuple[str, ...]]


@dataclass(slots=True)
class Answer:
    """What one POST came back with, classified."""

    outcome: Outcome
    status: int | None = None
    excerpt: str | None = None
    error: str | None = None
    retry_after: float | None = None
    latency_ms: float | None = None


class CachingResolver:
    """A DNS resolver that remembers each host's answer for ``ttl`` seconds.

    Failures are not remembered (the next request asks again). The cache holds addresses only:
    the SSRF guard checks them on every request, cached or not.
    """

    def __init__(self, inner: Resolver, *, clock: Clock, ttl: float) -> None:
        self._inner = inner
        self._clock = clock
        self.ttl = ttl
        self._answers: dict[str, tuple[float, Sequence[str]]] = {}

    async def __call__(self, host: str) -> Sequence[str]:
        now = self._clock.monotonic()
        found = self._answers.get(host)
        if found is not None and found[0] > now:
            return found[1]
        answers = list(await self._inner(host))
        if self.ttl > 0:
            if len(self._answers) > 10_000:  # many hosts: forget them all rather than grow
                self._answers.clear()
            self._answers[host] = (now + self.ttl, answers)
        return answers

    def clear(self) -> None:
        self._answers.clear()


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


def _readable(sock: _HasFileno) -> bool:
    """Whether ``sock`` has bytes (or EOF) waiting: an idle keep-alive connection the server
    closed. A socket already closed counts as readable (httpcore2 then drops the connection)."""
    fd = sock.fileno()
    if fd < 0:
        return True
    probe = select.poll()
    probe.register(fd, select.POLLIN)
    return bool(probe.poll(0))


class _ProbeCachingStream(httpcore2.AsyncNetworkStream):
    """A stream whose ``is_readable`` probe uses the socket found once, at connect time."""

    def __init__(self, inner: httpcore2.AsyncNetworkStream, sock: _HasFileno | None) -> None:
        self._inner = inner
        self._sock = sock

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - the httpcore2 interface
    ) -> httpcore2.AsyncNetworkStream:
        tls = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        return _ProbeCachingStream(tls, self._sock)  # TLS runs over the same TCP socket

    def get_extra_info(self, info: str) -> object:
        if info == "is_readable" and self._sock is not None:
            return _readable(self._sock)
        return self._inner.get_extra_info(info)


class ProbeCachingBackend(httpcore2.AsyncNetworkBackend):
    """Wraps a network backend so idle-connection probes cost one ``poll`` (module docstring)."""

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
        stream = await self._inner.connect_tcp(
            host, port, timeout=timeout, local_address=local_address, socket_options=socket_options
        )
        # a socket.socket, or asyncio's TransportSocket over one (AnyIO): both have fileno()
        sock = stream.get_extra_info("socket")
        usable = callable(getattr(sock, "fileno", None))
        return _ProbeCachingStream(stream, sock if usable else None)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - the httpcore2 interface
        socket_options: Iterable[httpcore2._types.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        return await self._inner.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options
        )

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class WebhookSender:
    """POSTs signed bodies to endpoints and classifies the answers.

    ``transport`` replaces the pinned transport (tests only: URLs are still vetted, the
    connection is not pinned); ``network_backend`` makes it httpcore2's, over that backend.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        timeout: float,
        redact: Callable[[str], str],
        resolver: Resolver | None = None,
        dns_ttl: float = 10.0,
        network_backend: httpcore2.AsyncNetworkBackend | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        max_connections: int = 100,
        gone_is_final: bool = True,
    ) -> None:
        self.clock = clock
        self.timeout = timeout
        self.resolver = CachingResolver(resolver or system_resolver, clock=clock, ttl=dns_ttl)
        self._backend = None if network_backend is None else ProbeCachingBackend(network_backend)
        self._transport = transport
        self._redact = redact
        self._gone_is_final = gone_is_final
        self._limits = httpx2.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._clients: dict[_PolicyKey, tuple[httpx2.AsyncClient, SsrfGuard]] = {}

    def _client(self, endpoint: Endpoint) -> tuple[httpx2.AsyncClient, SsrfGuard]:
        key = (endpoint.allow_nets, endpoint.allow_hosts)
        found = self._clients.get(key)
        if found is not None:
            return found
        guard = SsrfGuard(endpoint.policy, resolver=self.resolver)
        transport: httpx2.AsyncBaseTransport
        if self._transport is not None:
            transport = self._transport
        elif self._backend is not None:
            transport = PinnedTransport(guard, limits=self._limits, network_backend=self._backend)
        else:
            transport = PinnedHttp1Transport(guard, limits=self._limits)
        client = httpx2.AsyncClient(
            transport=transport,
            follow_redirects=False,
            trust_env=False,
            timeout=self.timeout,
            limits=self._limits,
        )
        self._clients[key] = (client, guard)
        return client, guard

    async def aclose(self) -> None:
        """Close the HTTP clients."""
        clients, self._clients = list(self._clients.values()), {}
        for client, _ in clients:
            await client.aclose()

    async def post(self, endpoint: Endpoint, body: bytes, headers: dict[str, str]) -> Answer:
        """One POST of ``body``; never raises for a network or HTTP failure (it is an answer)."""
        client, guard = self._client(endpoint)
        started = self.clock.monotonic()
        try:
            if self._transport is not None:
                await guard.vet(endpoint.url)  # pinned transports vet inside; mocks do not
            request = client.build_request("POST", endpoint.url, content=body, headers=headers)
            response = await client.send(request, stream=True)
            try:
                raw = bytearray()
                async for chunk in response.aiter_bytes():
                    raw += chunk
                    if len(raw) >= EXCERPT_CHARS * 4:
                        break
            finally:
                await response.aclose()
        except BlockedDestination as exc:
            return Answer("blocked", error=exc.message)
        except ConnectorError as exc:  # DNS failure (ConnectionFailed) and the like
            return Answer("failure", error=f"{exc.code}: {exc.message}")
        except httpx2.HTTPError as exc:
            return Answer("failure", error=type(exc).__name__)
        latency = (self.clock.monotonic() - started) * 1000
        status = response.status_code
        excerpt = self._redact(raw.decode("utf-8", "replace"))[:EXCERPT_CHARS] if raw else None
        if 200 <= status < 300:
            return Answer("success", status, excerpt, latency_ms=latency)
        outcome: Outcome = "failure"
        if status == 410 and self._gone_is_final:
            outcome = "gone"
        elif response.headers.get("webhook-delivery", "").lower() == "abort-message":
            outcome = "aborted"
        retry_after = None
        if status in (429, 502, 503, 504) and "retry-after" in response.headers:
            retry_after = parse_retry_after(response.headers["retry-after"], self.clock.time())
        error = "redirects are not followed" if 300 <= status < 400 else f"HTTP {status}"
        return Answer(outcome, status, excerpt, error, retry_after, latency)

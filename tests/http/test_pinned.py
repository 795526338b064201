"""The pinned transports: the connection goes to the vetted address, never to a second answer.

The behaviours both share run on each: the lean HTTP/1.1 one (``PinnedHttp1Transport``, its I/O
seam an ``open_connection``) and httpcore2's (``PinnedTransport``, an httpcore2 backend).
"""

import asyncio
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpcore2
import httpx2
import pytest

from connectors.errors import BlockedDestination
from connectors.http.pinned import (
    PinnedHttp1Transport,
    PinnedNetworkBackend,
    PinnedTransport,
    pinned_transport_factory,
)
from connectors.http.ssrf import SsrfGuard, SsrfPolicy

FAKE_PUBLIC = "93.184.216.34"
REFUSING = "93.184.216.35"


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        self.server.hosts.append(self.headers["Host"])
        body = b"pinned"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.hosts = []
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join()


class FlipResolver:
    """Answers a public address first, then 127.0.0.1 (a DNS rebinding attack)."""

    def __init__(self):
        self.calls = 0

    async def __call__(self, host):
        self.calls += 1
        return [FAKE_PUBLIC] if self.calls == 1 else ["127.0.0.1"]


class TwoAnswers:
    async def __call__(self, host):
        return [REFUSING, FAKE_PUBLIC]


class MappingBackend(httpcore2.AsyncNetworkBackend):
    """Records the address it is asked to dial; maps the fake public address to the server and
    refuses ``REFUSING``."""

    def __init__(self, port):
        self.port = port
        self.dialed: list[tuple[str, int]] = []
        self.inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host,
        port,
        timeout=None,  # noqa: ASYNC109
        local_address=None,
        socket_options=None,
    ):
        self.dialed.append((host, port))
        if host == REFUSING:
            raise httpcore2.ConnectError("refused")
        target = "127.0.0.1" if host == FAKE_PUBLIC else host
        return await self.inner.connect_tcp(target, self.port, timeout=timeout)

    async def sleep(self, seconds):
        await self.inner.sleep(seconds)


class MappingDialer:
    """The same for the lean transport: an ``asyncio.open_connection`` that records the address
    and the TLS name, and fails ``REFUSING`` with ``error``."""

    def __init__(self, port, error=ConnectionRefusedError):
        self.port = port
        self.error = error
        self.dialed: list[tuple[str, int]] = []
        self.names: list[str | None] = []

    async def __call__(self, host, port, *, ssl=None, server_hostname=None, limit):
        self.dialed.append((host, port))
        self.names.append(server_hostname)
        if host == REFUSING:
            raise self.error("refused")
        target = "127.0.0.1" if host == FAKE_PUBLIC else host
        return await asyncio.open_connection(target, self.port, limit=limit)


@pytest.fixture(params=["lean", "httpcore2"])
def pinned(request):
    """``make(guard, port) -> (transport, recorder)`` for each kind of pinned transport."""

    def make(guard, port):
        if request.param == "lean":
            dialer = MappingDialer(port)
            return PinnedHttp1Transport(guard, open_connection=dialer), dialer
        backend = MappingBackend(port)
        return PinnedTransport(guard, network_backend=backend), backend

    return make


def test_a_dns_answer_that_changes_after_the_check_cannot_redirect_the_connection(server, pinned):
    resolver = FlipResolver()
    transport, recorder = pinned(SsrfGuard(resolver=resolver), server.server_address[1])

    async def main():
        async with httpx2.AsyncClient(transport=transport) as client:
            response = await client.get("http://hooks.example.com:8080/x")
            assert response.text == "pinned"
            # the second request re-vets: the rebound answer is refused, nothing is dialed
            with pytest.raises(BlockedDestination, match=r"127\.0\.0\.1"):
                await client.get("http://hooks.example.com:8080/y")

    asyncio.run(main())
    assert recorder.dialed == [(FAKE_PUBLIC, 8080)]
    assert resolver.calls == 2
    assert server.hosts == ["hooks.example.com:8080"]  # Host header keeps the name


def test_blocked_urls_fail_before_any_connection(pinned):
    transport, recorder = pinned(SsrfGuard(), 1)

    async def main():
        async with httpx2.AsyncClient(transport=transport) as client:
            with pytest.raises(BlockedDestination, match="metadata"):
                await client.get("http://169.254.169.254/latest/meta-data/")

    asyncio.run(main())
    assert recorder.dialed == []


def test_the_next_address_is_tried_when_the_first_refuses(server, pinned):
    transport, recorder = pinned(SsrfGuard(resolver=TwoAnswers()), server.server_address[1])

    async def main():
        async with httpx2.AsyncClient(transport=transport) as client:
            assert (await client.get("http://two.example/")).text == "pinned"

    asyncio.run(main())
    assert [h for h, _ in recorder.dialed] == [REFUSING, FAKE_PUBLIC]


def test_an_allowlisted_loopback_receiver_is_reachable_and_redirects_are_not_followed(server):
    guard = SsrfGuard(SsrfPolicy.allowing(["127.0.0.1/32"]))
    factory = pinned_transport_factory(guard)

    async def main():
        transport = factory(limits=httpx2.Limits(), http2=False)
        async with httpx2.AsyncClient(transport=transport) as client:
            response = await client.get(f"http://127.0.0.1:{server.server_address[1]}/")
            assert response.status_code == 200

    asyncio.run(main())


def test_connections_nothing_was_pinned_for_are_refused():
    async def main():
        backend = PinnedNetworkBackend()
        with pytest.raises(httpcore2.ConnectError, match="never resolves"):
            await backend.connect_tcp("example.com", 80)
        with pytest.raises(httpcore2.ConnectError):
            await backend.connect_unix_socket("/tmp/x.sock")
        with pytest.raises(OSError, match="never resolves"):
            await PinnedHttp1Transport(SsrfGuard())._dial("example.com", 80, None)

    asyncio.run(main())


def test_lean_tls_names_the_host_and_a_certificate_failure_is_not_retried_elsewhere():
    dialer = MappingDialer(1, error=ssl.SSLCertVerificationError)

    async def main():
        transport = PinnedHttp1Transport(SsrfGuard(resolver=TwoAnswers()), open_connection=dialer)
        async with httpx2.AsyncClient(transport=transport) as client:
            with pytest.raises(httpx2.ConnectError):
                await client.get("https://two.example/")

    asyncio.run(main())
    assert dialer.dialed == [(REFUSING, 443)]
    assert dialer.names == ["two.example"]  # SNI and the certificate check: the URL's host


def test_the_factory_builds_the_lean_transport_for_http1_and_httpcore2s_otherwise():
    guard = SsrfGuard()
    limits = httpx2.Limits()
    assert type(pinned_transport_factory(guard)(limits=limits, http2=False)) is PinnedHttp1Transport
    assert type(pinned_transport_factory(guard)(limits=limits, http2=True)) is PinnedTransport
    with_backend = pinned_transport_factory(guard, network_backend=MappingBackend(1))
    assert type(with_backend(limits=limits, http2=False)) is PinnedTransport

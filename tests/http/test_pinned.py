"""The pinned transport: the connection goes to the vetted address, never to a second answer."""

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpcore2
import httpx2
import pytest

from connectors.errors import BlockedDestination
from connectors.http.pinned import PinnedNetworkBackend, PinnedTransport, pinned_transport_factory
from connectors.http.ssrf import SsrfGuard, SsrfPolicy

FAKE_PUBLIC = "93.184.216.34"


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


class MappingBackend(httpcore2.AsyncNetworkBackend):
    """Records the address it is asked to dial; maps the fake public address to the server."""

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
        target = "127.0.0.1" if host == FAKE_PUBLIC else host
        return await self.inner.connect_tcp(target, self.port, timeout=timeout)

    async def sleep(self, seconds):
        await self.inner.sleep(seconds)


def test_a_dns_answer_that_changes_after_the_check_cannot_redirect_the_connection(server):
    resolver = FlipResolver()
    backend = MappingBackend(server.server_address[1])

    async def main():
        transport = PinnedTransport(SsrfGuard(resolver=resolver), network_backend=backend)
        async with httpx2.AsyncClient(transport=transport) as client:
            response = await client.get("http://hooks.example.com:8080/x")
            assert response.text == "pinned"
            # the second request re-vets: the rebound answer is refused, nothing is dialed
            with pytest.raises(BlockedDestination, match=r"127\.0\.0\.1"):
                await client.get("http://hooks.example.com:8080/y")

    asyncio.run(main())
    assert backend.dialed == [(FAKE_PUBLIC, 8080)]
    assert resolver.calls == 2
    assert server.hosts == ["hooks.example.com:8080"]  # Host header keeps the name


def test_the_backend_refuses_connections_that_were_not_vetted():
    async def main():
        backend = PinnedNetworkBackend()
        with pytest.raises(httpcore2.ConnectError, match="never resolves"):
            await backend.connect_tcp("example.com", 80)
        with pytest.raises(httpcore2.ConnectError):
            await backend.connect_unix_socket("/tmp/x.sock")

    asyncio.run(main())


def test_blocked_urls_fail_before_any_connection():
    backend = MappingBackend(1)

    async def main():
        transport = PinnedTransport(SsrfGuard(), network_backend=backend)
        async with httpx2.AsyncClient(transport=transport) as client:
            with pytest.raises(BlockedDestination, match="metadata"):
                await client.get("http://169.254.169.254/latest/meta-data/")

    asyncio.run(main())
    assert backend.dialed == []


def test_an_allowlisted_loopback_receiver_is_reachable_and_redirects_are_not_followed(server):
    guard = SsrfGuard(SsrfPolicy.allowing(["127.0.0.1/32"]))
    factory = pinned_transport_factory(guard)

    async def main():
        transport = factory(limits=httpx2.Limits(), http2=False)
        async with httpx2.AsyncClient(transport=transport) as client:
            response = await client.get(f"http://127.0.0.1:{server.server_address[1]}/")
            assert response.status_code == 200

    asyncio.run(main())


def test_the_next_address_is_tried_when_the_first_refuses(server):
    port = server.server_address[1]

    class TwoAnswers:
        async def __call__(self, host):
            return ["93.184.216.35", FAKE_PUBLIC]

    class Backend(MappingBackend):
        async def connect_tcp(
            self,
            host,
            port,
            timeout=None,  # noqa: ASYNC109
            local_address=None,
            socket_options=None,
        ):
            if host == "93.184.216.35":
                self.dialed.append((host, port))
                raise httpcore2.ConnectError("refused")
            return await super().connect_tcp(host, port, timeout)

    backend = Backend(port)

    async def main():
        transport = PinnedTransport(SsrfGuard(resolver=TwoAnswers()), network_backend=backend)
        async with httpx2.AsyncClient(transport=transport) as client:
            assert (await client.get("http://two.example/")).text == "pinned"

    asyncio.run(main())
    assert [h for h, _ in backend.dialed] == ["93.184.216.35", FAKE_PUBLIC]

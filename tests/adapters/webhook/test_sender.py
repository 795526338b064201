"""The HTTP side: cached DNS answers that are still vetted, cheap idle-connection probes."""

import asyncio
import socket

import httpcore2
import httpx2
import pytest

from connectors.adapters.webhook.endpoints import Endpoint
from connectors.adapters.webhook.sender import CachingResolver, ProbeCachingBackend, WebhookSender
from connectors.clock import FakeClock, system_clock
from connectors.http.pinned import PinnedHttp1Transport, PinnedTransport
from connectors.observability.redaction import redact_text


def run(coro):
    return asyncio.run(coro)


def test_dns_answers_are_reused_for_the_ttl_then_asked_again():
    clock = FakeClock()
    asked = []

    async def resolver(host):
        asked.append(host)
        return [f"93.184.216.{len(asked)}"]

    async def main():
        cached = CachingResolver(resolver, clock=clock, ttl=10)
        assert await cached("a.example") == ["93.184.216.1"]
        assert await cached("a.example") == ["93.184.216.1"]
        assert await cached("b.example") == ["93.184.216.2"]  # per host
        clock.advance(10.5)
        assert await cached("a.example") == ["93.184.216.3"]

    run(main())
    assert asked == ["a.example", "b.example", "a.example"]


def test_a_failed_lookup_is_not_cached():
    clock = FakeClock()
    calls = 0

    async def resolver(host):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("temporary failure")
        return ["93.184.216.34"]

    async def main():
        cached = CachingResolver(resolver, clock=clock, ttl=10)
        with pytest.raises(OSError, match="temporary"):
            await cached("a.example")
        assert await cached("a.example") == ["93.184.216.34"]

    run(main())


def test_a_cached_answer_is_vetted_on_every_request_and_a_rebinding_is_blocked_after_the_ttl():
    clock = FakeClock()
    answers = {"now": "93.184.216.34"}
    sent = []

    async def resolver(host):
        return [answers["now"]]

    async def main():
        sender = WebhookSender(
            clock=clock,
            timeout=5,
            redact=redact_text,
            resolver=resolver,
            dns_ttl=10,
            transport=httpx2.MockTransport(lambda r: sent.append(r) or httpx2.Response(204)),
        )
        endpoint = Endpoint("ep", "acme", "https://hooks.example.com/wh", ("${secret:x}",))
        assert (await sender.post(endpoint, b"{}", {})).outcome == "success"
        answers["now"] = "10.0.0.7"  # the name now points inside the network
        assert (await sender.post(endpoint, b"{}", {})).outcome == "success"  # cached, public
        clock.advance(11)
        blocked = await sender.post(endpoint, b"{}", {})
        assert blocked.outcome == "blocked"
        assert "10.0.0.7" in blocked.error
        await sender.aclose()

    run(main())
    assert len(sent) == 2


class _Stream(httpcore2.AsyncNetworkStream):
    def __init__(self, sock):
        self.sock = sock
        self.asked = []

    def get_extra_info(self, info):
        self.asked.append(info)
        return self.sock if info == "socket" else f"inner:{info}"


class _Backend(httpcore2.AsyncNetworkBackend):
    def __init__(self, stream):
        self.stream = stream

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # noqa: ASYNC109
        return self.stream


def test_the_idle_probe_polls_the_socket_found_at_connect_and_sees_a_server_close():
    mine, server = socket.socketpair()
    inner = _Stream(mine)

    async def main():
        stream = await ProbeCachingBackend(_Backend(inner)).connect_tcp("127.0.0.1", 80)
        assert stream.get_extra_info("is_readable") is False
        server.close()  # the server dropped the idle keep-alive connection
        assert stream.get_extra_info("is_readable") is True
        assert stream.get_extra_info("server_addr") == "inner:server_addr"

    try:
        run(main())
    finally:
        mine.close()
    assert inner.asked == ["socket", "server_addr"]  # the probe itself never asked the stream


def test_a_pooled_connection_the_server_closed_is_replaced_not_used():
    connections = 0

    async def main():
        nonlocal connections
        writers = []

        async def handle(reader, writer):
            nonlocal connections
            connections += 1
            writers.append(writer)
            try:
                while True:
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                    await reader.readexactly(length)
                    writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        sender = WebhookSender(clock=system_clock, timeout=5, redact=redact_text)
        endpoint = Endpoint(
            "ep", "acme", f"http://127.0.0.1:{port}/hook", ("x",), allow_nets=("127.0.0.1/32",)
        )
        try:
            assert (await sender.post(endpoint, b"{}", {})).outcome == "success"
            assert (await sender.post(endpoint, b"{}", {})).outcome == "success"
            assert connections == 1  # keep-alive reused
            writers[0].close()  # the server closes the idle connection
            await writers[0].wait_closed()
            await asyncio.sleep(0.05)
            answer = await sender.post(endpoint, b"{}", {})
            assert answer.outcome == "success", answer.error
            assert connections == 2
        finally:
            await sender.aclose()
            server.close()
            await server.wait_closed()

    run(main())


def test_deliveries_go_through_the_lean_pinned_transport_unless_an_httpcore2_backend_is_given():
    endpoint = Endpoint("ep", "acme", "https://hooks.example.com/wh", ("x",))

    async def main():
        lean = WebhookSender(clock=system_clock, timeout=5, redact=redact_text)
        backend = ProbeCachingBackend()
        core = WebhookSender(
            clock=system_clock, timeout=5, redact=redact_text, network_backend=backend
        )
        try:
            assert type(lean._client(endpoint)[0]._transport) is PinnedHttp1Transport
            assert type(core._client(endpoint)[0]._transport) is PinnedTransport
        finally:
            await lean.aclose()
            await core.aclose()

    run(main())

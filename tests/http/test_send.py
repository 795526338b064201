"""send(): an httpx2.Auth flow and a transport driven directly, as AsyncClient.send would.

The transport here is a recorder (``Recorder``) that answers from a script and hands out bodies
that say whether they were read and closed, so each test sees exactly what ``send`` did. The
last tests run ConnectorHttpClient over loopback with its default transport, to show which
requests take the direct path and which keep httpx2's own ``send``.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator

import h11
import httpx2
import pytest

from connectors.auth import BearerAuth
from connectors.clock import FakeClock
from connectors.context import CallContext
from connectors.http import ConnectorHttpClient
from connectors.http.send import direct_send_applies, read_in_memory, send
from connectors.http.transport import Http1Transport
from connectors.resilience import Pipeline, ResiliencePolicy
from connectors.secrets import Secret
from connectors.state import MemoryStateBackend

URL = "https://api.example.com/items"


async def send_get(
    transport: httpx2.AsyncBaseTransport, *, auth: httpx2.Auth | None, stream: bool
) -> httpx2.Response:
    """``send`` of a GET to ``URL`` with an empty cookie jar (most tests' request)."""
    return await send(
        transport, httpx2.Request("GET", URL), auth=auth, cookies=httpx2.Cookies(), stream=stream
    )


class TrackedBody(httpx2.AsyncByteStream):
    """A response body that records whether it was iterated and closed; may fail mid-way."""

    def __init__(self, data: bytes, *, fail: bool = False) -> None:
        self.data = data
        self.fail = fail
        self.iterated = False
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.iterated = True
        yield self.data[:1]
        if self.fail:
            raise httpx2.ReadError("the connection dropped mid-body")
        yield self.data[1:]

    async def aclose(self) -> None:
        self.closed = True


Script = Callable[[httpx2.Request], httpx2.Response]


class Recorder(httpx2.AsyncBaseTransport):
    """Answers from ``script`` and records the requests and the bodies it handed out.

    Unlike ``MockTransport`` it does not buffer the request body: it streams it, as a network
    transport does, so a test can tell whether ``send`` buffered it.
    """

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[httpx2.Request] = []
        self.authorizations: list[str | None] = []  # as sent (a flow may reuse the request)
        self.sent_bodies: list[bytes] = []
        self.bodies: list[TrackedBody] = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        assert isinstance(request.stream, httpx2.AsyncByteStream)
        self.sent_bodies.append(b"".join([part async for part in request.stream]))
        self.requests.append(request)
        self.authorizations.append(request.headers.get("authorization"))
        answer = self.script(request)
        body = TrackedBody(answer.content)
        self.bodies.append(body)
        return httpx2.Response(answer.status_code, headers=answer.headers, stream=body)


def ok(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(200, content=b"payload")


def unauthorized_unless(token: str) -> Script:
    """401 with a body unless the request carries ``Bearer <token>``."""

    def script(request: httpx2.Request) -> httpx2.Response:
        if request.headers.get("authorization") == f"Bearer {token}":
            return httpx2.Response(200, content=b"payload")
        return httpx2.Response(401, content=b'{"error": "expired"}')

    return script


class RefreshOn401(httpx2.Auth):
    """Its own async flow: a stale token, then a fresh one after a 401; records its closing."""

    def __init__(self) -> None:
        self.closed = False
        self.seen: list[int] = []

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        try:
            request.headers["Authorization"] = "Bearer stale"
            response = yield request
            self.seen.append(response.status_code)
            if response.status_code == 401:
                request.headers["Authorization"] = "Bearer fresh"
                response = yield request
                self.seen.append(response.status_code)
        finally:
            self.closed = True


class BodyCheckingAuth(httpx2.Auth):
    """A sync flow that needs the response body: httpx2's Auth base drives it and reads it."""

    requires_response_body = True

    def auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        request.headers["Authorization"] = "Bearer stale"
        response = yield request
        if b"expired" in response.content:  # ResponseNotRead if nobody read it
            request.headers["Authorization"] = "Bearer fresh"
            yield request


def run(main: Callable[[], object]) -> None:
    asyncio.run(main())  # type: ignore[arg-type]


# --- without auth ---------------------------------------------------------------------------


def test_response_is_read_and_closed_and_knows_its_request() -> None:
    async def main() -> None:
        transport = Recorder(ok)
        request = httpx2.Request("GET", URL)
        got = await send(transport, request, auth=None, cookies=httpx2.Cookies(), stream=False)
        assert got.content == b"payload"
        assert got.request is request
        assert transport.bodies[0].closed

    run(main)


def test_stream_true_returns_an_unread_open_response() -> None:
    async def main() -> None:
        transport = Recorder(ok)
        got = await send_get(transport, auth=None, stream=True)
        body = transport.bodies[0]
        assert not body.iterated
        assert not body.closed
        with pytest.raises(httpx2.ResponseNotRead):
            _ = got.content
        assert await got.aread() == b"payload"
        assert body.closed

    run(main)


def test_a_body_that_fails_while_read_closes_the_response() -> None:
    async def main() -> None:
        class Failing(Recorder):
            async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
                body = TrackedBody(b"partial", fail=True)
                self.bodies.append(body)
                return httpx2.Response(200, stream=body)

        transport = Failing(ok)
        with pytest.raises(httpx2.ReadError):
            await send_get(transport, auth=None, stream=False)
        assert transport.bodies[0].closed

    run(main)


def test_transport_errors_carry_the_request() -> None:
    class Refusing(httpx2.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            raise httpx2.ConnectError("refused")  # no request attached, as some transports do

    async def main() -> None:
        request = httpx2.Request("GET", URL)
        with pytest.raises(httpx2.ConnectError) as caught:
            await send(Refusing(), request, auth=None, cookies=httpx2.Cookies(), stream=False)
        assert caught.value.request is request

    run(main)


def test_a_sync_only_request_body_is_refused() -> None:
    async def main() -> None:
        request = httpx2.Request("POST", URL, content=iter([b"sync"]))
        with pytest.raises(RuntimeError, match="sync request"):
            await send(Recorder(ok), request, auth=None, cookies=httpx2.Cookies(), stream=False)

    run(main)


# --- cookies ------------------------------------------------------------------------------------


def test_set_cookie_answers_land_in_the_cookie_jar() -> None:
    def script(request: httpx2.Request) -> httpx2.Response:
        if request.headers.get("authorization") == "Bearer fresh":
            return httpx2.Response(200, headers=[("Set-Cookie", "final=2; Path=/")])
        return httpx2.Response(
            401, headers=[("set-cookie", "session=abc; Path=/"), ("Set-Cookie", "lang=en")]
        )

    async def main() -> None:
        cookies = httpx2.Cookies()
        await send(
            Recorder(script),
            httpx2.Request("GET", URL),
            auth=RefreshOn401(),
            cookies=cookies,
            stream=False,
        )
        assert dict(cookies) == {"session": "abc", "lang": "en", "final": "2"}

    run(main)


def test_answers_without_set_cookie_leave_the_jar_alone() -> None:
    async def main() -> None:
        cookies = httpx2.Cookies({"kept": "1"})
        await send(
            Recorder(ok), httpx2.Request("GET", URL), auth=None, cookies=cookies, stream=False
        )
        assert dict(cookies) == {"kept": "1"}

    run(main)


# --- auth flows ---------------------------------------------------------------------------------


def test_flow_that_retries_after_401_returns_the_final_response() -> None:
    async def main() -> None:
        transport = Recorder(unauthorized_unless("fresh"))
        auth = RefreshOn401()
        got = await send_get(transport, auth=auth, stream=False)
        assert (got.status_code, got.content) == (200, b"payload")
        assert transport.authorizations == ["Bearer stale", "Bearer fresh"]
        intermediate, final = transport.bodies
        assert intermediate.iterated  # read, so its connection is free
        assert intermediate.closed
        assert final.closed
        assert [r.status_code for r in got.history] == [401]
        assert got.history[0].content == b'{"error": "expired"}'
        assert auth.seen == [401, 200]
        assert auth.closed

    run(main)


def test_flow_that_needs_the_response_body_gets_it_read() -> None:
    async def main() -> None:
        transport = Recorder(unauthorized_unless("fresh"))
        got = await send_get(transport, auth=BodyCheckingAuth(), stream=True)
        assert got.status_code == 200
        assert len(transport.requests) == 2
        assert transport.bodies[0].closed
        # requires_response_body reads every answer the flow sees, the last one too.
        assert transport.bodies[1].iterated
        await got.aclose()

    run(main)


def test_flow_is_closed_when_the_transport_fails() -> None:
    class Refusing(httpx2.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            raise httpx2.ConnectError("refused", request=request)

    async def main() -> None:
        auth = RefreshOn401()
        with pytest.raises(httpx2.ConnectError):
            await send_get(Refusing(), auth=auth, stream=False)
        assert auth.closed  # suspended at its first yield, then closed by send

    run(main)


def test_flow_is_closed_when_the_caller_is_cancelled() -> None:
    class Hanging(httpx2.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            await asyncio.Event().wait()
            raise AssertionError("unreachable")

    async def main() -> None:
        auth = RefreshOn401()
        task = asyncio.create_task(send_get(Hanging(), auth=auth, stream=False))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert auth.closed

    run(main)


def test_failure_in_the_flow_closes_the_response_and_the_flow() -> None:
    class Giving(httpx2.Auth):
        closed = False

        async def async_auth_flow(
            self, request: httpx2.Request
        ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
            try:
                response = yield request
                raise PermissionError(f"rejected with {response.status_code}")
            finally:
                self.closed = True

    async def main() -> None:
        transport = Recorder(unauthorized_unless("never"))
        auth = Giving()
        with pytest.raises(PermissionError, match="401"):
            await send_get(transport, auth=auth, stream=True)
        assert transport.bodies[0].closed
        assert auth.closed

    run(main)


def test_failure_while_reading_the_final_body_closes_it_after_the_flow() -> None:
    class FailingBodies(Recorder):
        async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
            body = TrackedBody(b"partial", fail=True)
            self.bodies.append(body)
            return httpx2.Response(200, stream=body)

    async def main() -> None:
        transport = FailingBodies(ok)
        auth = RefreshOn401()
        with pytest.raises(httpx2.ReadError):
            await send_get(transport, auth=auth, stream=False)
        assert transport.bodies[0].closed
        assert auth.closed

    run(main)


class StreamingUploadAuth(httpx2.Auth):
    """Says it needs the request body (so httpx2's default flow would buffer it), but its own
    flow streams a replayable body instead, as the Salesforce bulk upload does."""

    requires_request_body = True
    requires_response_body = True

    async def async_auth_flow(
        self, request: httpx2.Request
    ) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        request.headers["Authorization"] = "Bearer token"
        yield request


async def _upload() -> AsyncIterator[bytes]:
    for part in (b"row1\n", b"row2\n"):
        yield part


def test_a_flow_of_its_own_decides_whether_bodies_are_buffered() -> None:
    # httpx2.AsyncClient reads neither body behind such a flow's back: send() must not either
    # (a large upload would be buffered in memory, a streamed download read whole).
    async def via_send() -> tuple[httpx2.Request, Recorder, httpx2.Response]:
        transport = Recorder(ok)
        request = httpx2.Request("POST", URL, content=_upload())
        got = await send(
            transport, request, auth=StreamingUploadAuth(), cookies=httpx2.Cookies(), stream=True
        )
        return request, transport, got

    async def via_httpx2() -> tuple[httpx2.Request, Recorder, httpx2.Response]:
        transport = Recorder(ok)
        async with httpx2.AsyncClient(transport=transport, auth=StreamingUploadAuth()) as client:
            request = client.build_request("POST", URL, content=_upload())
            got = await client.send(request, stream=True)
            return request, transport, got

    async def main() -> None:
        for sender in (via_send, via_httpx2):
            request, transport, got = await sender()
            assert transport.sent_bodies == [b"row1\nrow2\n"]
            with pytest.raises(httpx2.RequestNotRead):
                _ = request.content
            assert not transport.bodies[0].iterated
            await got.aclose()

    run(main)


def test_send_matches_httpx2_for_a_refreshing_flow() -> None:
    def script(request: httpx2.Request) -> httpx2.Response:
        answer = unauthorized_unless("fresh")(request)
        answer.headers["Set-Cookie"] = f"seen{answer.status_code}=1"
        return answer

    async def through(sender: str) -> tuple[list[str | None], list[int], bytes, dict[str, str]]:
        transport = Recorder(script)
        if sender == "direct":
            cookies = httpx2.Cookies()
            got = await send(
                transport,
                httpx2.Request("GET", URL),
                auth=RefreshOn401(),
                cookies=cookies,
                stream=False,
            )
        else:
            async with httpx2.AsyncClient(transport=transport, auth=RefreshOn401()) as client:
                got = await client.get(URL)
                cookies = client.cookies
        history = [r.status_code for r in got.history]
        return transport.authorizations, history, got.content, dict(cookies)

    async def main() -> None:
        assert await through("direct") == await through("httpx2")

    run(main)


# --- which requests take the direct path ----------------------------------------------------


def test_direct_send_applies_unless_the_url_carries_credentials() -> None:
    assert direct_send_applies(httpx2.Request("GET", URL))
    assert direct_send_applies(httpx2.Request("GET", "http://127.0.0.1:8000/x?user=a@b"))
    assert not direct_send_applies(httpx2.Request("GET", "https://user:secret@api.example.com/"))
    assert not direct_send_applies(httpx2.Request("GET", "https://user@api.example.com/"))


class EchoServer:
    """Loopback HTTP/1.1: answers each request with its Authorization and Cookie headers and,
    on ``/login``, a Set-Cookie."""

    def __init__(self) -> None:
        self.port = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def __aenter__(self) -> EchoServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        parser = h11.Connection(h11.SERVER)
        try:
            while True:
                event = parser.next_event()
                if event is h11.NEED_DATA:
                    parser.receive_data(await reader.read(65536))
                elif isinstance(event, h11.Request):
                    headers = dict(event.headers)
                    body = b"auth=%b cookie=%b" % (
                        headers.get(b"authorization", b"-"),
                        headers.get(b"cookie", b"-"),
                    )
                    login = event.target == b"/login"
                    extra = b"Set-Cookie: session=s1; Path=/\r\n" if login else b""
                    writer.write(
                        b"HTTP/1.1 200 OK\r\n%bContent-Length: %d\r\n\r\n%b"
                        % (extra, len(body), body)
                    )
                elif isinstance(event, h11.EndOfMessage):
                    # The answer bypassed h11: a fresh parser for the next request.
                    leftover = parser.trailing_data[0]
                    parser = h11.Connection(h11.SERVER)
                    if leftover:
                        parser.receive_data(leftover)
                elif not isinstance(event, h11.Data):
                    break
        except (ConnectionError, h11.RemoteProtocolError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)


def test_connector_client_sends_url_credentials_through_httpx2_and_the_rest_directly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)

    async def main() -> None:
        async with EchoServer() as server:
            pipeline = Pipeline(
                "demo", ResiliencePolicy(), state=MemoryStateBackend(), clock=FakeClock()
            )
            async with ConnectorHttpClient("demo", pipeline=pipeline) as client:
                ctx = CallContext(tenant="acme", actor="alice")
                base = f"127.0.0.1:{server.port}"
                with_userinfo = await client.get(
                    f"http://bob:s%20cret@{base}/private", ctx=ctx, operation="op"
                )
                expected = base64.b64encode(b"bob:s cret")
                assert with_userinfo.content.startswith(b"auth=Basic " + expected)
                await client.get(f"http://{base}/login", ctx=ctx, operation="op")
                plain = await client.get(f"http://{base}/next", ctx=ctx, operation="op")
                # The direct path: no Authorization, and the cookie set by /login comes back.
                assert plain.content == b"auth=- cookie=session=s1"

    run(main)


def test_connector_client_edits_with_an_editing_auth_and_drives_a_changed_flow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    edits: list[str] = []

    class Counted(BearerAuth):
        def edit(self, request: httpx2.Request) -> None:
            edits.append(str(request.url))
            super().edit(request)

    class Refreshing(BearerAuth):
        """A flow of its own: retries once with another token after a 200 (to be seen)."""

        def auth_flow(
            self, request: httpx2.Request
        ) -> Generator[httpx2.Request, httpx2.Response, None]:
            request.headers["Authorization"] = "Bearer first"
            response = yield request
            if b"first" in response.read():
                request.headers["Authorization"] = "Bearer second"
                yield request

    async def main() -> None:
        async with EchoServer() as server:
            pipeline = Pipeline(
                "demo", ResiliencePolicy(), state=MemoryStateBackend(), clock=FakeClock()
            )
            ctx = CallContext(tenant="acme", actor="alice")
            base = f"http://127.0.0.1:{server.port}/"
            async with ConnectorHttpClient(
                "demo", pipeline=pipeline, base_url=base, auth=Counted(Secret("tok-1"))
            ) as client:
                answer = await client.get("items", ctx=ctx, operation="op")
                assert answer.content == b"auth=Bearer tok-1 cookie=-"
                assert edits == [base + "items"]
            async with ConnectorHttpClient(
                "demo", pipeline=pipeline, base_url=base, auth=Refreshing(Secret("tok-2"))
            ) as client:
                answer = await client.get("items", ctx=ctx, operation="op")
                assert answer.content == b"auth=Bearer second cookie=-"
                assert len(answer.history) == 1

    run(main)


def test_an_unread_small_response_still_streams_raw_bytes_over_the_lean_transport() -> None:
    """stream=True keeps the body unread even when the transport has it in memory already."""

    async def main() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        transport = Http1Transport()
        try:
            request = httpx2.Request("GET", f"http://127.0.0.1:{port}/")
            response = await send(
                transport, request, auth=None, cookies=httpx2.Cookies(), stream=True
            )
            assert [chunk async for chunk in response.aiter_raw()] == [b"hello"]
            await response.aclose()
        finally:
            await transport.aclose()
            server.close()
            await server.wait_closed()

    asyncio.run(main())


def _in_memory(body: bytes, headers: list[tuple[bytes, bytes]]) -> httpx2.Response:
    request = httpx2.Request("GET", URL)
    return httpx2.Response(200, headers=headers, stream=httpx2.ByteStream(body), request=request)


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b'{"ok":true,"user":"caf\xc3\xa9"}', [(b"Content-Type", b"application/json")]),
        (b"", []),
        (b"x" * 70_000, [(b"Content-Type", b"text/plain; charset=latin-1")]),
        (__import__("gzip").compress(b"zipped"), [(b"Content-Encoding", b"gzip")]),
    ],
    ids=["json", "empty", "large", "gzip"],
)
def test_reading_an_in_memory_body_leaves_what_httpx2_read_leaves(
    body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    ours, theirs = _in_memory(body, headers), _in_memory(body, headers)
    read_in_memory(ours)
    theirs.read()
    for response in (ours, theirs):
        assert response.is_closed
        assert response.is_stream_consumed
    assert ours.content == theirs.content
    assert ours.text == theirs.text
    assert ours.num_bytes_downloaded == theirs.num_bytes_downloaded
    assert list(ours.iter_bytes(7)) == list(theirs.iter_bytes(7))
    assert ours.read() == theirs.read()
    assert asyncio.run(ours.aread()) == asyncio.run(theirs.aread())
    for response in (ours, theirs):
        with pytest.raises(httpx2.StreamConsumed):
            list(response.iter_raw())
    if body.startswith(b"{"):
        assert ours.json() == theirs.json()

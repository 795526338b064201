"""A lean HTTP/1.1 transport for ``httpx2`` on asyncio streams: the default for connector clients.

::

    httpx2.AsyncClient.send(request)
        Http1Transport.handle_async_request(request)
            pool: an idle keep-alive connection for (scheme, host, port), or a new one
                  (asyncio.open_connection; TLS with SNI and certificate check for https)
            write: request line + headers (+ body) in one write; chunked framing if asked
            read:  status line + headers (1xx skipped); body framed by RFC 9112 §6.3
                   small Content-Length bodies are read at once and the connection goes back
                   to the pool before the response is returned; larger, chunked and
                   close-delimited ones stream in pieces of at most READ_CHUNK bytes
            close: a connection that cannot be reused is aborted (no TLS close_notify, as
                   httpcore's client streams): its socket closes on the loop's next turn

Why: httpcore2's pool, h11's state machine and anyio's stream wrappers cost ~0.5 ms of CPU per
request on this project's benchmark machine, two to three times an aiohttp client's, for work a
connector's plain HTTP/1.1 calls do not need (docs/decisions/0009-lean-http1-transport.md).
httpx2 keeps everything above the transport: the API, auth flows, redirects, decoding, cookies.

What it does not do, and who does instead: HTTP/2, proxies and Unix sockets are left to
``httpx2.AsyncHTTPTransport`` (:func:`default_transport` picks it when any is asked for, including
proxies from the environment). Responses must use CRLF line endings (every HTTP/1.1 server
does); a head over ``max_head_bytes`` is a protocol error, not a hang.

Errors are httpx2's: ``ConnectError``/``ConnectTimeout``, ``WriteError``/``WriteTimeout``,
``ReadError``/``ReadTimeout``, ``PoolTimeout``, ``RemoteProtocolError`` (malformed or truncated
response), ``LocalProtocolError`` (a header or target that would break the framing: CR, LF or NUL
in it), ``UnsupportedProtocol`` (not http/https), so the response classifier maps them as before.
"""

from __future__ import annotations

import asyncio
import select
import ssl
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from types import TracebackType
from typing import Final, Self

import httpx2
from httpx2._utils import get_environment_proxies

from connectors.http.headers import headers_from_lines
from connectors.http.wire import chunk_size, framing, is_chunked, parse_head, request_head

__all__ = ["Http1Transport", "default_transport"]

#: Bodies up to this many bytes (by Content-Length) are read with the head; larger ones stream.
EAGER_BODY_LIMIT: Final = 256 * 1024
#: Largest response head (status line + headers) accepted.
MAX_HEAD_BYTES: Final = 64 * 1024
#: Requests up to this size (head and body) are written without waiting for the socket to drain.
SMALL_WRITE: Final = 64 * 1024
#: Size of one read while streaming a body.
READ_CHUNK: Final = 64 * 1024
#: Seconds idle after which a pooled connection's socket is asked whether the server closed it.
PROBE_IDLE: Final = 1.0
_DEFAULT_LIMITS: Final = httpx2.Limits(
    max_connections=100, max_keepalive_connections=20, keepalive_expiry=30.0
)
_HEAD_END: Final = b"\r\n\r\n"
# Idle-connection ages: a plain monotonic clock (asyncio.get_running_loop() costs a getpid()
# system call per use on Python 3.11, twice a request here).
_monotonic = time.monotonic

_Key = tuple[str, str, int]
_Timeouts = Mapping[str, float | None]


class _Connection:
    """One TCP (or TLS) connection, used by one request at a time, on the loop that opened it."""

    __slots__ = ("idle_since", "key", "loop", "reader", "writer")

    def __init__(
        self, key: _Key, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.key = key
        self.reader = reader
        self.writer = writer
        self.loop = asyncio.get_running_loop()
        self.idle_since = 0.0

    def usable(self, now: float, expiry: float | None) -> bool:
        """True if an idle connection can carry another request: open, quiet, not expired."""
        idle = now - self.idle_since
        if expiry is not None and idle >= expiry:
            return False
        reader = self.reader
        # EOF or stray bytes from the server mean it closed or broke the connection while idle.
        stray: bytes = getattr(reader, "_buffer", b"")
        if self.writer.is_closing() or reader.at_eof() or stray:
            return False
        # The loop learns of the server's close only when it next polls the socket: if it was
        # busy meanwhile (a long computation on the loop), a server's idle timeout may have
        # closed the connection unseen, and a request sent on it would fail (or, not being
        # idempotent, end with an unknown outcome). After a second of idleness the socket
        # itself is asked: anything to read on an idle connection means it is gone.
        return idle < PROBE_IDLE or not _readable(self.writer)

    def close(self) -> None:
        # abort, not close: no TLS close_notify exchange (httpcore's client streams skip it
        # too), so the socket is closed on the loop's next iteration instead of after a round
        # trip, or the SSL shutdown timeout, that a loop about to end would never see.
        self.writer.transport.abort()


def _readable(writer: asyncio.StreamWriter) -> bool:
    """Whether the connection's socket has something to read (data, EOF or an error) now."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return True  # nothing to ask: treat it as gone
    poller = select.poll()
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))


class _Expiry:
    """A read timeout's timer callback: cancels the reading task and remembers that it did."""

    __slots__ = ("fired", "task")

    def __init__(self, task: asyncio.Task[object]) -> None:
        self.task = task
        self.fired = False

    def __call__(self) -> None:
        self.fired = True
        self.task.cancel()


class Http1Transport(httpx2.AsyncBaseTransport):
    """A pooled HTTP/1.1 transport; one per client, used from one event loop.

    ``limits`` has httpx2's meaning: ``max_connections`` open connections in all (a request
    beyond it waits up to the pool timeout), ``max_keepalive_connections`` kept idle, each for at
    most ``keepalive_expiry`` seconds. ``verify`` is httpx2's: ``True`` (system/certifi CAs),
    ``False``, or an ``ssl.SSLContext``.
    """

    def __init__(
        self,
        *,
        limits: httpx2.Limits = _DEFAULT_LIMITS,
        verify: ssl.SSLContext | bool = True,
        max_head_bytes: int = MAX_HEAD_BYTES,
    ) -> None:
        # None in httpx2.Limits means no bound.
        self._max_connections = _bound(limits.max_connections)
        self._max_idle = _bound(limits.max_keepalive_connections)
        self._expiry = limits.keepalive_expiry
        self._verify = verify
        self._ssl: ssl.SSLContext | None = verify if isinstance(verify, ssl.SSLContext) else None
        self._max_head = max_head_bytes
        self._idle: dict[_Key, list[_Connection]] = {}
        self._idle_count = 0
        self._open = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    # --- the request -----------------------------------------------------------------------------

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if self._closed:
            raise RuntimeError("the transport is closed")
        url = request.url
        scheme = url.scheme
        if scheme == "https":
            port = url.port or 443
        elif scheme == "http":
            port = url.port or 80
        else:
            raise httpx2.UnsupportedProtocol(
                f"the lean HTTP/1.1 transport speaks http and https, not {scheme!r}",
                request=request,
            )
        head, close = request_head(request)
        timeouts: _Timeouts = request.extensions.get("timeout") or {}
        # raw_host: the IDNA 2008 (punycode) name httpx2 puts in Host; url.host is the unicode
        # form, which asyncio and ssl would re-encode with Python's IDNA 2003 codec (another
        # name for some hosts: "faß.de" becomes "fass.de").
        key = (scheme, url.raw_host.decode("ascii"), port)
        conn = await self._acquire(key, timeouts, request)
        try:
            await _send(conn, head, request, timeouts.get("write"))
            return await self._receive(conn, request, timeouts.get("read"), close)
        except BaseException:
            self._discard(conn)
            raise

    async def _receive(
        self, conn: _Connection, request: httpx2.Request, seconds: float | None, close: bool
    ) -> httpx2.Response:
        method = request.method
        reader = conn.reader
        # The read timeout, as asyncio.timeout(seconds) would apply it, for half its cost: one
        # timer that cancels this task, turned into TimeoutError when it was that cancellation.
        handle: asyncio.TimerHandle | None = None
        expiry: _Expiry | None = None
        cancelling = 0
        if seconds is not None:
            task = asyncio.current_task()
            assert task is not None  # a transport runs inside a task
            cancelling = task.cancelling()
            expiry = _Expiry(task)
            loop = conn.loop
            handle = loop.call_at(loop.time() + seconds, expiry)
        try:
            try:
                while True:
                    data = await reader.readuntil(_HEAD_END)
                    status, reason, version, headers = parse_head(data, request)
                    if status >= 200:
                        break
                    if status == 101:
                        raise httpx2.RemoteProtocolError(
                            "the server switched protocols (101); not supported here",
                            request=request,
                        )
                    if status < 100:
                        raise httpx2.RemoteProtocolError(
                            f"invalid status code {status}", request=request
                        )
                length, chunked, reuse = framing(method, status, version, headers, request, close)
                body: bytes | None = None
                if length is not None and length <= EAGER_BODY_LIMIT:
                    body = await reader.readexactly(length) if length else b""
            except asyncio.CancelledError:
                if expiry is not None and expiry.fired and expiry.task.uncancel() <= cancelling:
                    raise TimeoutError from None  # ours: the read timed out
                raise
            finally:
                if handle is not None:
                    handle.cancel()
        except _READ_FAILURES as exc:
            raise _read_failure(
                exc,
                request,
                "the response",
                "before the response was complete",
                f"the response head is longer than {self._max_head} bytes",
            ) from exc
        extensions = {"http_version": version, "reason_phrase": reason}
        stream: httpx2.AsyncByteStream
        if body is not None:
            # The whole body is here and the connection goes back to the pool now. It stays a
            # stream (ByteStream, not content=), so a caller that asked for an unread response
            # can still use aiter_raw(); connectors.http.send reads it directly when the caller
            # did not.
            self._release(conn, reuse)
            stream = httpx2.ByteStream(body)
        else:
            stream = _BodyStream(self, conn, request, length, reuse, seconds, chunked)
        response = httpx2.Response(
            status, headers=headers_from_lines(headers), stream=stream, extensions=extensions
        )
        if data.isascii():
            # What httpx2 would work out on first access, by decoding every header (~2 µs).
            response.headers.encoding = "ascii"
        return response

    # --- the pool --------------------------------------------------------------------------------

    async def _acquire(
        self, key: _Key, timeouts: _Timeouts, request: httpx2.Request
    ) -> _Connection:
        waited = False
        deadline: float | None = None
        while True:
            idle = self._idle.get(key)
            if idle:
                now = _monotonic()  # idle times are on this clock too (the loop's, by default)
                while idle:
                    conn = idle.pop()
                    self._idle_count -= 1
                    if conn.usable(now, self._expiry):
                        return conn
                    self._discard(conn)
            if self._open < self._max_connections or self._evict_idle():
                break
            loop = asyncio.get_running_loop()
            if not waited:  # one pool timeout for the whole wait, however often woken
                waited = True
                pool = timeouts.get("pool")
                deadline = None if pool is None else loop.time() + pool
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout_at(deadline):
                    await waiter
            except BaseException as exc:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # woken, but leaving (cancelled meanwhile): pass the turn on
                elif waiter in self._waiters:
                    self._waiters.remove(waiter)
                if isinstance(exc, TimeoutError):
                    raise httpx2.PoolTimeout(
                        f"no connection free within the pool timeout "
                        f"({self._max_connections} open)",
                        request=request,
                    ) from exc
                raise
            if self._closed:
                raise RuntimeError("the transport is closed")
        self._open += 1
        try:
            return await self._connect(key, timeouts.get("connect"), request)
        except BaseException:
            self._open -= 1
            self._wake()
            raise

    async def _connect(
        self, key: _Key, seconds: float | None, request: httpx2.Request
    ) -> _Connection:
        scheme, host, port = key
        context = self._ssl_context() if scheme == "https" else None
        try:
            async with asyncio.timeout(seconds):
                reader, writer = await self._dial(host, port, context)
        except TimeoutError as exc:
            raise httpx2.ConnectTimeout(
                f"timed out connecting to {host}:{port}", request=request
            ) from exc
        except (OSError, ssl.SSLError) as exc:
            raise httpx2.ConnectError(
                f"could not connect to {host}:{port}: {exc}", request=request
            ) from exc
        return _Connection(key, reader, writer)

    async def _dial(
        self, host: str, port: int, context: ssl.SSLContext | None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Connect to ``host`` (TLS for ``host`` if ``context``); a subclass may dial elsewhere."""
        return await asyncio.open_connection(
            host,
            port,
            ssl=context,
            server_hostname=host if context is not None else None,
            limit=self._max_head,
        )

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            context = httpx2.create_ssl_context(verify=self._verify)
            context.set_alpn_protocols(["http/1.1"])
            self._ssl = context
        return self._ssl

    def _release(self, conn: _Connection, reuse: bool) -> None:
        """Give a finished connection back: kept idle for its origin, or closed."""
        if not reuse or self._closed or self._idle_count >= self._max_idle:
            self._discard(conn)
            return
        conn.idle_since = _monotonic()
        self._idle.setdefault(conn.key, []).append(conn)
        self._idle_count += 1
        self._wake()

    def _discard(self, conn: _Connection) -> None:
        conn.close()
        self._open -= 1
        self._wake()

    def _evict_idle(self) -> bool:
        """Close one idle connection of any origin to make room; False if none is idle."""
        for conns in self._idle.values():
            if conns:
                conn = conns.pop(0)
                self._idle_count -= 1
                self._discard(conn)
                return True
        return False

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    # --- lifecycle -------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close the idle connections (their sockets are closed when this returns) and refuse
        new requests; responses still streaming finish, and their connections are closed."""
        self._closed = True
        closing = 0
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
                self._open -= 1
                closing += 1
        self._idle.clear()
        self._idle_count = 0
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._waiters.clear()
        if closing:
            await asyncio.sleep(0)  # the aborted transports close their sockets meanwhile

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"Http1Transport(open={self._open}, idle={self._idle_count})"


class _BodyStream(httpx2.AsyncByteStream):
    """A response body read from its connection as the caller iterates; the connection goes
    back to the pool when the body ends, and is closed if the caller stops early."""

    def __init__(
        self,
        transport: Http1Transport,
        conn: _Connection,
        request: httpx2.Request,
        length: int | None,
        reuse: bool,
        timeout: float | None,
        chunked: bool,
    ) -> None:
        self._transport = transport
        self._conn: _Connection | None = conn
        self._request = request
        self._remaining = length
        self._reuse = reuse
        self._timeout = timeout
        self._chunked = chunked
        self._chunk_left = 0  # bytes of the current chunk still to read (large chunks only)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks()

    async def _chunks(self) -> AsyncIterator[bytes]:
        try:
            while self._conn is not None:
                try:
                    async with asyncio.timeout(self._timeout):
                        chunk = await self._next(self._conn.reader)
                except _READ_FAILURES as exc:
                    raise _read_failure(
                        exc,
                        self._request,
                        "the response body",
                        "in the middle of the body",
                        "a chunk-size line is too long",
                    ) from exc
                if chunk is None:
                    conn, self._conn = self._conn, None
                    self._transport._release(conn, self._reuse)
                    return
                if chunk:
                    yield chunk
        finally:
            await self.aclose()

    async def _next(self, reader: asyncio.StreamReader) -> bytes | None:
        """The next piece of the body; None once it is complete."""
        if self._chunked:
            left = self._chunk_left
            if not left:
                size = chunk_size(await reader.readuntil(b"\r\n"), self._request)
                if size == 0:
                    while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers, ignored
                        pass
                    return None
                if size <= READ_CHUNK:  # the common case: the chunk and its CRLF in one read
                    data = await reader.readexactly(size + 2)
                    if data[-2:] != b"\r\n":
                        raise httpx2.RemoteProtocolError(
                            "a chunk is not followed by CRLF", request=self._request
                        )
                    return data[:-2]
                left = size  # a large chunk streams in pieces: memory stays bounded
            data = await reader.read(min(left, READ_CHUNK))
            if not data:
                raise asyncio.IncompleteReadError(b"", left)
            left -= len(data)
            if not left and await reader.readexactly(2) != b"\r\n":
                raise httpx2.RemoteProtocolError(
                    "a chunk is not followed by CRLF", request=self._request
                )
            self._chunk_left = left
            return data
        remaining = self._remaining
        if remaining is None:  # delimited by the server closing the connection
            data = await reader.read(READ_CHUNK)
            return data or None
        if remaining == 0:
            return None
        data = await reader.read(min(remaining, READ_CHUNK))
        if not data:
            raise asyncio.IncompleteReadError(b"", remaining)
        self._remaining = remaining - len(data)
        return data

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:  # the caller stopped before the end: the connection is unusable
            self._transport._discard(conn)


# --- sending -------------------------------------------------------------------------------------


async def _send(
    conn: _Connection, head: bytes, request: httpx2.Request, seconds: float | None
) -> None:
    stream = request.stream
    writer = conn.writer
    message: bytes | None = None
    if isinstance(stream, httpx2.ByteStream):
        message = head + b"".join(stream)
        if len(message) <= SMALL_WRITE:
            # Handed to the socket at once (asyncio buffers what the kernel does not take, far
            # below its high-water mark): nothing to wait for, and a failed or stalled send shows
            # up as a read error or read timeout on the response.
            writer.write(message)
            return
    try:
        async with asyncio.timeout(seconds):
            if message is not None:
                writer.write(message)
            else:
                writer.write(head)
                chunked = is_chunked(request.headers.raw)
                assert isinstance(stream, httpx2.AsyncByteStream)
                async for chunk in stream:
                    if not chunk:
                        continue
                    if chunked:
                        writer.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
                    else:
                        writer.write(chunk)
                    await writer.drain()
                if chunked:
                    writer.write(b"0\r\n\r\n")
            await writer.drain()
    except TimeoutError as exc:
        raise httpx2.WriteTimeout("timed out sending the request", request=request) from exc
    except (OSError, ssl.SSLError) as exc:
        raise httpx2.WriteError(f"sending the request failed: {exc}", request=request) from exc


_READ_FAILURES: Final = (
    TimeoutError,
    asyncio.IncompleteReadError,
    asyncio.LimitOverrunError,
    OSError,
    ssl.SSLError,
)


def _read_failure(
    exc: BaseException, request: httpx2.Request, what: str, when_closed: str, too_long: str
) -> httpx2.TransportError:
    """httpx2's error for a failed read of ``what`` (the head or the body), by cause."""
    if isinstance(exc, TimeoutError):
        return httpx2.ReadTimeout(f"timed out reading {what}", request=request)
    if isinstance(exc, asyncio.IncompleteReadError):
        return httpx2.RemoteProtocolError(
            f"the server closed the connection {when_closed}", request=request
        )
    if isinstance(exc, asyncio.LimitOverrunError):
        return httpx2.RemoteProtocolError(too_long, request=request)
    return httpx2.ReadError(f"reading {what} failed: {exc}", request=request)


def _bound(limit: int | None) -> int:
    return sys.maxsize if limit is None else limit


def default_transport(
    *, limits: httpx2.Limits, http2: bool, trust_env: bool = True
) -> httpx2.AsyncBaseTransport | None:
    """The transport a connector client gets when none is given: :class:`Http1Transport`,
    unless HTTP/2 or a proxy from the environment is wanted (``None``: httpx2's own, which
    handles both)."""
    if http2:
        return None
    # The proxies httpx2 would take from the environment (HTTP(S)_PROXY, ALL_PROXY; NO_PROXY
    # entries map to None): any of them means the connection must go through httpx2's transport.
    if trust_env and any(v is not None for v in get_environment_proxies().values()):
        return None
    return Http1Transport(limits=limits)

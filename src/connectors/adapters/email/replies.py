"""Reading SMTP replies in order, several per segment: what pipelining needs and aiosmtplib lacks.

aiosmtplib's protocol keeps one reply at a time, so the replies to a pipelined envelope (RFC 2920)
would be lost. :class:`ReplyReader` sits between an authenticated session's transport and
aiosmtplib's protocol and parses every reply while a transaction owns the session.
"""

from __future__ import annotations

import asyncio
from collections import deque

import aiosmtplib

#: Limits on a reply, as aiosmtplib has them: one line, and a whole (multiline) reply.
_MAX_LINE = 8192
_MAX_REPLY = 4 * _MAX_LINE

__all__ = ["ReplyReader"]


class ReplyReader(asyncio.Protocol):
    """Reads the replies of a transaction in order, however many arrive in one segment.

    Once a session is authenticated, this protocol is put between its transport and
    aiosmtplib's protocol (``transport.set_protocol``). While :func:`deliver` owns the session
    (``reading``), it parses every reply into a queue; otherwise the bytes go to aiosmtplib
    (``NOOP`` checks, ``QUIT``). Connection events and flow control always reach aiosmtplib
    too, so its client still knows when the connection is gone.
    """

    def __init__(self, transport: asyncio.WriteTransport, inner: asyncio.Protocol) -> None:
        self._transport = transport
        self._inner = inner
        self._buffer = bytearray()
        self._replies: deque[aiosmtplib.SMTPResponse] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._failure: str | None = None
        self._paused = False
        self.reading = False
        transport.set_protocol(self)

    @classmethod
    def attach(cls, client: aiosmtplib.SMTP) -> ReplyReader:
        """Put a reader between ``client``'s transport and its protocol."""
        transport, inner = client.transport, client.protocol
        if not isinstance(transport, asyncio.WriteTransport) or inner is None:
            raise aiosmtplib.SMTPServerDisconnected("Connection lost")
        return cls(transport, inner)

    # --- asyncio.Protocol -------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if not self.reading:
            self._inner.data_received(data)
            return
        self._buffer += data
        try:
            self._parse()
        except aiosmtplib.SMTPResponseException as exc:
            self._fail(exc.message)
            self._transport.abort()
        self._wake()

    def eof_received(self) -> bool | None:
        self._fail("Unexpected EOF received")
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail("Connection lost")
        self._paused = False
        self._wake()
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._paused = True
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._paused = False
        self._wake()
        self._inner.resume_writing()

    # --- used by deliver() ------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if self._failure is not None or self._transport.is_closing():
            raise aiosmtplib.SMTPServerDisconnected(self._failure or "Connection lost")
        self._transport.write(data)

    async def drain(self) -> None:
        """Wait while the transport's buffer is over its high-water mark."""
        while self._paused and self._failure is None:
            await self._wait()

    async def read(self) -> aiosmtplib.SMTPResponse:
        """The next reply, in the order the commands were written."""
        while not self._replies:
            if self._failure is not None:
                raise aiosmtplib.SMTPServerDisconnected(self._failure)
            await self._wait()
        return self._replies.popleft()

    def release(self) -> bool:
        """Stop reading; ``False`` if unread replies or bytes are left (the session is out of
        step with the server and must not be reused)."""
        self.reading = False
        clean = not self._replies and not self._buffer and self._failure is None
        self._replies.clear()
        del self._buffer[:]
        return clean

    # --- internals --------------------------------------------------------------------------

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, why: str) -> None:
        if self._failure is None:
            self._failure = why

    def _parse(self) -> None:
        """Move every complete reply from the buffer to the queue (RFC 5321 section 4.2)."""
        buffer = self._buffer
        while True:
            start, lines = 0, []
            while (end := buffer.find(b"\n", start)) != -1:
                line = bytes(buffer[start : end + 1])
                start = end + 1
                if len(line) > _MAX_LINE:
                    raise aiosmtplib.SMTPResponseException(-1, "Response too long")
                if not line[:3].isdigit():
                    raise aiosmtplib.SMTPResponseException(-1, "Malformed SMTP response")
                lines.append(line)
                if line[3:4] != b"-":  # "250-..." continues, "250 ..." ends the reply
                    break
            else:
                if len(buffer) > _MAX_REPLY:
                    raise aiosmtplib.SMTPResponseException(-1, "Response too long")
                return
            text = b"\n".join(line[4:].strip(b" \t\r\n") for line in lines)
            self._replies.append(
                aiosmtplib.SMTPResponse(int(lines[-1][:3]), text.decode("utf-8", "surrogateescape"))
            )
            del buffer[:start]

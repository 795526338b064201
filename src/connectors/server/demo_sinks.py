"""Loopback sinks for the demo's workflow: an SMTP server and a webhook receiver.

Both listen on a free 127.0.0.1 port of the running event loop and only count what they get;
:class:`~connectors.server.demo.Traffic` starts them on its own loop and points the ``email``
and ``webhook`` definitions at them.
"""

from __future__ import annotations

import asyncio

__all__ = ["HookReceiver", "MailSink"]


class MailSink:
    """An aiosmtpd server on a free 127.0.0.1 port of the running loop, counting messages."""

    def __init__(self) -> None:
        self.messages = 0
        self.port = 0
        self._server: asyncio.AbstractServer | None = None

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        """aiosmtpd's hook: accept and count (the body is dropped)."""
        self.messages += 1
        return "250 2.0.0 OK"

    async def start(self) -> int:
        """Listen; raises ``ImportError`` without aiosmtpd (a development dependency)."""
        from aiosmtpd.smtp import SMTP

        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="demo.localhost"), "127.0.0.1", 0
        )
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None


class HookReceiver:
    """A minimal HTTP/1.1 receiver on a free 127.0.0.1 port: answers 204 to every request."""

    def __init__(self) -> None:
        self.received = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            self.received += 1
            writer.write(
                b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, OSError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

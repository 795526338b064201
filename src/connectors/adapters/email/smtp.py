"""SMTP: a small connection pool and one delivery attempt over a pooled connection.

:class:`SmtpPool` keeps up to ``max_size`` authenticated aiosmtplib connections. A connection is
used by one send at a time (aiosmtplib clients are not for concurrent sends), returned after a
clean transaction, checked with ``NOOP`` when it sat idle longer than ``noop_after`` seconds,
retired after ``max_messages`` messages (servers cap messages per session), and discarded on any
error that leaves the session in doubt. Logins use PLAIN, LOGIN or XOAUTH2; an XOAUTH2 rejection
asks the token source for a new token once and retries the login once.

:func:`deliver` runs one transaction (``MAIL``, ``RCPT``..., ``DATA``) and streams the body from
:meth:`PreparedMessage.chunks`, so large attachments are never held in memory whole. When the
server advertises ``PIPELINING`` (RFC 2920) the envelope goes out as one write, ``MAIL``, every
``RCPT`` and ``DATA`` together, and the replies are read back in order: a message costs two
round trips instead of three plus one per recipient. Every reply is still checked, so a refused
sender or recipient is reported exactly as it is one command at a time. Failures are translated
by :mod:`.classify` according to the phase they happened in.

aiosmtplib connects, negotiates TLS and logs in; the transaction itself is written to the
transport and its replies read by :class:`ReplyReader`, because aiosmtplib's protocol keeps
only one reply at a time (replies to a pipelined batch would be lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

import aiosmtplib

from connectors.adapters.email.classify import SmtpPhase, not_sent, smtp_error, smtp_reply_error
from connectors.adapters.email.message import PreparedMessage
from connectors.adapters.email.replies import ReplyReader
from connectors.adapters.email.settings import ServerSettings
from connectors.adapters.email.xoauth2 import TokenSource
from connectors.clock import Clock, system_clock
from connectors.errors import (
    AuthenticationFailed,
    ConnectorError,
    FieldError,
    InvalidRequest,
    Timeout,
)

#: Bytes per socket write while streaming a body (bounds memory per send).
_WRITE_SIZE = 256 * 1024
#: Envelope addresses are printable ASCII: anything else could inject commands.
_UNSAFE = re.compile(r"[^\x21-\x7e]")
#: "Service not available, closing transmission channel": the server hangs up after it.
_CLOSING = 421
_PHASE_WHAT: Final[dict[SmtpPhase, str]] = {"envelope": "the envelope", "data": "the DATA command"}

__all__ = [
    "PoolStats",
    "RecipientRefusal",
    "SendResult",
    "SmtpConnection",
    "SmtpPool",
    "deliver",
]


@dataclass(frozen=True, slots=True)
class RecipientRefusal:
    """Why the server refused one recipient."""

    code: int
    message: str


@dataclass(frozen=True, slots=True)
class SendResult:
    """The outcome of a send: the Message-ID, who was accepted, who was refused and why."""

    message_id: str
    accepted: tuple[str, ...]
    refused: Mapping[str, RecipientRefusal]
    size: int
    response: str


@dataclass(slots=True)
class PoolStats:
    """Counters for tests, benchmarks and the health detail."""

    opened: int = 0
    reused: int = 0
    discarded: int = 0
    noop_checks: int = 0


@dataclass(slots=True)
class SmtpConnection:
    """One authenticated SMTP session."""

    client: aiosmtplib.SMTP
    replies: ReplyReader
    last_used: float
    #: The server advertised PIPELINING: the envelope goes out in one write.
    pipelining: bool = False
    sent: int = 0
    #: Cleared when the session is in doubt (errors, a transaction left open).
    reusable: bool = True


class SmtpPool:
    """Up to ``max_size`` SMTP connections to one server, shared by concurrent sends."""

    def __init__(
        self,
        server: ServerSettings,
        *,
        tokens: TokenSource | None,
        local_hostname: str | None = None,
        max_size: int = 4,
        max_messages: int = 100,
        noop_after: float = 10.0,
        clock: Clock = system_clock,
    ) -> None:
        self.server = server
        self._tokens = tokens
        self._local_hostname = local_hostname
        self._max_messages = max_messages
        self._noop_after = noop_after
        self._clock = clock
        self._slots = asyncio.Semaphore(max_size)
        self._idle: list[SmtpConnection] = []
        self._closed = False
        self.max_size = max_size
        self.stats = PoolStats()

    @asynccontextmanager
    async def connection(self, budget: float | None) -> AsyncIterator[SmtpConnection]:
        """A connection for one transaction; returned to the pool if it is still clean."""
        try:
            async with asyncio.timeout(budget):
                await self._slots.acquire()
        except TimeoutError:
            raise Timeout(
                f"no SMTP connection became free within {budget}s (smtp_pool_size={self.max_size})",
                request_sent=False,
            ) from None
        conn: SmtpConnection | None = None
        try:
            conn = await self._checkout(budget)
            yield conn
        except BaseException as exc:
            # Typed errors were raised after deliver() judged the session; anything else
            # (cancellation, a bug) leaves it in doubt.
            if conn is not None and not isinstance(exc, ConnectorError):
                conn.reusable = False
            raise
        finally:
            try:
                if conn is not None:
                    self._checkin(conn)
            finally:
                self._slots.release()

    async def _checkout(self, budget: float | None) -> SmtpConnection:
        while self._idle:
            conn = self._idle.pop()
            if not conn.client.is_connected:
                self._discard(conn)
                continue
            if self._clock.monotonic() - conn.last_used >= self._noop_after:
                self.stats.noop_checks += 1
                try:
                    response = await conn.client.noop(timeout=_short(budget))
                except (aiosmtplib.SMTPException, OSError):
                    self._discard(conn)
                    continue
                if response.code != 250:
                    self._discard(conn)
                    continue
            self.stats.reused += 1
            return conn
        return await self._open(budget)

    def _checkin(self, conn: SmtpConnection) -> None:
        conn.last_used = self._clock.monotonic()
        if (
            self._closed
            or not conn.reusable
            or not conn.client.is_connected
            or conn.sent >= self._max_messages
        ):
            self._discard(conn, polite=conn.reusable and conn.client.is_connected)
            return
        self._idle.append(conn)

    def _discard(self, conn: SmtpConnection, *, polite: bool = False) -> None:
        self.stats.discarded += 1
        if polite:
            # QUIT without waiting for the answer: the session is clean, nothing is lost.
            with contextlib.suppress(aiosmtplib.SMTPException, AttributeError, RuntimeError):
                conn.client.protocol.write(b"QUIT\r\n")  # type: ignore[union-attr]
        conn.client.close()

    async def _open(self, budget: float | None) -> SmtpConnection:
        server = self.server
        client = aiosmtplib.SMTP(
            hostname=server.host,
            port=server.port,
            use_tls=server.security == "tls",
            start_tls=server.security == "starttls",
            tls_context=server.ssl_context() if server.security != "none" else None,
            local_hostname=self._local_hostname,
            timeout=budget,
        )
        try:
            await client.connect(timeout=budget)
        except Exception as exc:
            client.close()
            raise smtp_error(exc, "connect", server.address) from exc
        try:
            await self._authenticate(client, budget)
        except BaseException:
            client.close()
            raise
        self.stats.opened += 1
        return SmtpConnection(
            client,
            ReplyReader.attach(client),
            last_used=self._clock.monotonic(),
            pipelining=client.supports_extension("pipelining"),
        )

    async def _authenticate(self, client: aiosmtplib.SMTP, budget: float | None) -> None:
        server = self.server
        try:
            if client.is_ehlo_or_helo_needed:
                await client.ehlo(timeout=budget)
        except Exception as exc:
            raise smtp_error(exc, "connect", server.address) from exc
        if server.auth == "none":
            return
        if not client.supports_extension("auth"):
            raise AuthenticationFailed(
                f"the SMTP server at {server.address} offers no AUTH on this connection",
                provider_code="auth_unavailable",
                hint="use smtp_security starttls or tls: servers hide AUTH on plaintext "
                "connections",
            )
        assert server.username is not None
        try:
            if server.auth == "xoauth2":
                await self._xoauth2(client, server.username, budget)
            elif server.auth == "login" or "plain" not in client.server_auth_methods:
                assert server.password is not None
                await client.auth_login(server.username, server.password.reveal(), timeout=budget)
            else:
                assert server.password is not None
                await client.auth_plain(server.username, server.password.reveal(), timeout=budget)
        except ConnectorError:
            raise
        except Exception as exc:
            raise smtp_error(exc, "auth", server.address) from exc

    async def _xoauth2(self, client: aiosmtplib.SMTP, user: str, budget: float | None) -> None:
        if self._tokens is None:  # pragma: no cover - settings refuse xoauth2 without a source
            raise AuthenticationFailed("XOAUTH2 is configured without a token source")
        token = await self._tokens.current()
        try:
            await client.auth_xoauth2(user, token.reveal(), timeout=budget)
            return
        except aiosmtplib.SMTPAuthenticationError as exc:
            fresh = await self._tokens.refreshed(token)
            if fresh is None:
                raise smtp_error(exc, "auth", self.server.address) from exc
        await client.auth_xoauth2(user, fresh.reveal(), timeout=budget)

    async def probe(self, budget: float | None) -> None:
        """Health probe on a fresh connection: connect, EHLO, TLS, AUTH, NOOP, QUIT."""
        conn = await self._open(budget)
        self.stats.opened -= 1  # a probe is not a pooled connection
        try:
            response = await conn.client.noop(timeout=budget)
            if response.code != 250:
                raise smtp_reply_error(response.code, response.message, what="NOOP")
            await conn.client.quit(timeout=budget)
        except ConnectorError:
            raise
        except Exception as exc:
            raise smtp_error(exc, "envelope", self.server.address) from exc
        finally:
            conn.client.close()

    async def close(self) -> None:
        """Close every idle connection (QUIT) and refuse to keep new ones."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            if conn.client.is_connected:
                try:
                    await conn.client.quit(timeout=2.0)
                except (aiosmtplib.SMTPException, OSError):
                    conn.client.close()
            self.stats.discarded += 1

    @property
    def idle_count(self) -> int:
        return len(self._idle)


async def deliver(
    conn: SmtpConnection, message: PreparedMessage, budget: float | None
) -> SendResult:
    """One SMTP transaction for ``message`` on ``conn`` (which the caller owns)."""
    client = conn.client
    address = f"{client.hostname}:{client.port}"
    limit = _size_limit(client)
    if limit and message.size > limit:
        raise InvalidRequest(
            f"the message is {message.size} bytes; the server at {address} accepts at most {limit}",
            provider_code="552",
        )
    sender = message.sender.envelope
    recipients = [r.envelope for r in message.recipients]
    if any(_UNSAFE.search(a) for a in (sender, *recipients)):
        # prepare() refuses such addresses; a hand-built PreparedMessage must not inject either
        raise InvalidRequest("an envelope address is not printable ASCII")
    size = f" SIZE={message.size}" if "size" in client.esmtp_extensions else ""
    commands = [
        f"MAIL FROM:<{sender}>{size}\r\n".encode("ascii"),
        *(f"RCPT TO:<{r}>\r\n".encode("ascii") for r in recipients),
        b"DATA\r\n",
    ]
    conn.replies.reading = True
    try:
        return await _transaction(conn, message, commands, address, budget)
    finally:
        if not conn.replies.release():
            conn.reusable = False


async def _transaction(
    conn: SmtpConnection,
    message: PreparedMessage,
    commands: list[bytes],
    address: str,
    budget: float | None,
) -> SendResult:
    replies = await _envelope(conn, commands, address, budget)
    mail = replies[0]
    data = replies[-1] if len(replies) == len(commands) else None  # None: DATA was not sent
    accepted: list[str] = []
    refused: dict[str, RecipientRefusal] = {}
    rcpt_replies = replies[1 : 1 + len(message.recipients)]
    for recipient, reply in zip(message.recipients, rcpt_replies, strict=False):
        if reply.code in (250, 251):
            accepted.append(recipient.addr)
        else:
            refused[recipient.addr] = RecipientRefusal(reply.code, reply.message)
    if mail.code != 250 or not accepted:
        if data is not None and data.code == 354:
            # RFC 2920: a server may start DATA after refusing every recipient; end the
            # (empty) message so the session stays in step.
            await _end_empty_data(conn, budget)
        await _reset(conn, budget)
        if mail.code != 250:
            raise smtp_reply_error(mail.code, mail.message, what="the envelope")
        raise _all_refused(refused)
    assert data is not None
    if data.code != 354:
        await _reset(conn, budget)
        raise smtp_reply_error(data.code, data.message, what="the DATA command")
    conn.sent += 1
    try:
        async with asyncio.timeout(budget):
            reply = await _stream_body(conn.replies, message)
    except Exception as exc:
        conn.reusable = False
        conn.client.close()
        raise smtp_error(exc, "body", address) from exc
    if reply.code != 250:
        raise smtp_reply_error(reply.code, reply.message, what="the message")
    return SendResult(
        message_id=message.message_id,
        accepted=tuple(accepted),
        refused=refused,
        size=message.size,
        response=f"{reply.code} {reply.message}",
    )


async def _envelope(
    conn: SmtpConnection, commands: list[bytes], address: str, budget: float | None
) -> list[aiosmtplib.SMTPResponse]:
    """Send ``MAIL``, one ``RCPT`` per recipient and ``DATA``; their replies, in order.

    Pipelined, all commands go out in one write and every reply is read. One at a time, the
    exchange stops after a refused ``MAIL``, and ``DATA`` is not sent when every recipient was
    refused (the reply list is then shorter than ``commands``).
    """
    reader = conn.replies
    replies: list[aiosmtplib.SMTPResponse] = []
    phase: SmtpPhase = "envelope"
    try:
        async with asyncio.timeout(budget):
            if conn.pipelining:
                reader.write(b"".join(commands))
            for index, command in enumerate(commands):
                last = index == len(commands) - 1
                if not conn.pipelining:
                    if last and not any(r.code in (250, 251) for r in replies[1:]):
                        break
                    reader.write(command)
                phase = "data" if last else "envelope"
                reply = await reader.read()
                if reply.code == _CLOSING:
                    # The server is hanging up: the rest of the replies will never come.
                    conn.reusable = False
                    conn.client.close()
                    raise smtp_reply_error(reply.code, reply.message, what=_PHASE_WHAT[phase])
                replies.append(reply)
                if index == 0 and reply.code != 250 and not conn.pipelining:
                    break
    except ConnectorError:
        raise
    except Exception as exc:
        conn.reusable = False
        conn.client.close()
        raise smtp_error(exc, phase, address) from exc
    return replies


async def _stream_body(reader: ReplyReader, message: PreparedMessage) -> aiosmtplib.SMTPResponse:
    """Write the dot-stuffed body slice by slice with flow control; read the final reply."""
    # Coalesce slices into writes of up to _WRITE_SIZE (fewer syscalls; a small message and
    # its terminating dot go out in one write), with flow control between writes.
    pending = bytearray()
    for chunk in message.chunks(smtp=True):
        pending += chunk
        if len(pending) >= _WRITE_SIZE:
            reader.write(bytes(pending))
            pending.clear()
            await reader.drain()
    pending += b".\r\n"
    reader.write(bytes(pending))
    return await reader.read()


async def _end_empty_data(conn: SmtpConnection, budget: float | None) -> None:
    try:
        async with asyncio.timeout(_short(budget)):
            conn.replies.write(b".\r\n")
            await conn.replies.read()
    except (TimeoutError, aiosmtplib.SMTPException, OSError):
        conn.reusable = False
        conn.client.close()


async def _reset(conn: SmtpConnection, budget: float | None) -> None:
    """RSET after a refused envelope so the session can be reused; drop it if that fails."""
    if not conn.client.is_connected:
        conn.reusable = False
        return
    try:
        async with asyncio.timeout(_short(budget)):
            conn.replies.write(b"RSET\r\n")
            response = await conn.replies.read()
    except (TimeoutError, aiosmtplib.SMTPException, OSError):
        conn.reusable = False
        conn.client.close()
        return
    if response.code != 250:
        conn.reusable = False


def _short(budget: float | None) -> float:
    return 5.0 if budget is None else min(budget, 5.0)


def _size_limit(client: aiosmtplib.SMTP) -> int:
    value = client.esmtp_extensions.get("size", "")
    return int(value) if value.strip().isdigit() else 0


def _all_refused(refused: Mapping[str, RecipientRefusal]) -> ConnectorError:
    fields = tuple(
        FieldError(field=addr, message=f"{r.code} {r.message}", code=str(r.code))
        for addr, r in refused.items()
    )
    codes = {r.code for r in refused.values()}
    if all(400 <= code < 500 for code in codes):
        first = next(iter(refused.values()))
        error = smtp_reply_error(first.code, first.message, what="every recipient")
        return not_sent(error)
    return InvalidRequest(
        f"the SMTP server refused every recipient ({len(refused)})",
        fields=fields,
        provider_code=str(min(codes)),
    )

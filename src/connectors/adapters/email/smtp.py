"""SMTP: a small connection pool and one delivery attempt over a pooled connection.

:class:`SmtpPool` keeps up to ``max_size`` authenticated aiosmtplib connections. A connection is
used by one send at a time (aiosmtplib clients are not for concurrent sends), returned after a
clean transaction, checked with ``NOOP`` when it sat idle longer than ``noop_after`` seconds,
retired after ``max_messages`` messages (servers cap messages per session), and discarded on any
error that leaves the session in doubt. Logins use PLAIN, LOGIN or XOAUTH2; an XOAUTH2 rejection
asks the token source for a new token once and retries the login once.

:func:`deliver` runs one transaction (``MAIL``, ``RCPT``..., ``DATA``) and streams the body from
:meth:`PreparedMessage.chunks`, so large attachments are never held in memory whole. Failures are
translated by :mod:`.classify` according to the phase they happened in.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiosmtplib

from connectors.adapters.email.classify import not_sent, smtp_error, smtp_reply_error
from connectors.adapters.email.message import PreparedMessage
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

__all__ = ["PoolStats", "RecipientRefusal", "SendResult", "SmtpConnection", "SmtpPool", "deliver"]


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
    last_used: float
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
        return SmtpConnection(client, last_used=self._clock.monotonic())

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
    options = [f"SIZE={message.size}"] if "size" in client.esmtp_extensions else []
    try:
        await client.mail(message.sender.envelope, options=options, timeout=budget)
    except Exception as exc:
        await _reset(conn, budget)
        raise smtp_error(exc, "envelope", address) from exc
    accepted: list[str] = []
    refused: dict[str, RecipientRefusal] = {}
    for recipient in message.recipients:
        try:
            await client.rcpt(recipient.envelope, timeout=budget)
        except aiosmtplib.SMTPRecipientRefused as exc:
            refused[recipient.addr] = RecipientRefusal(exc.code, exc.message)
        except Exception as exc:
            await _reset(conn, budget)
            raise smtp_error(exc, "envelope", address) from exc
        else:
            accepted.append(recipient.addr)
    if not accepted:
        await _reset(conn, budget)
        raise _all_refused(refused)
    try:
        start = await client.execute_command(b"DATA", timeout=budget)
    except Exception as exc:
        conn.reusable = False
        raise smtp_error(exc, "data", address) from exc
    if start.code != 354:
        await _reset(conn, budget)
        raise smtp_reply_error(start.code, start.message, what="the DATA command")
    conn.sent += 1
    try:
        async with asyncio.timeout(budget):
            reply = await _stream_body(client, message)
    except Exception as exc:
        conn.reusable = False
        client.close()
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


async def _stream_body(
    client: aiosmtplib.SMTP, message: PreparedMessage
) -> aiosmtplib.SMTPResponse:
    """Write the dot-stuffed body slice by slice with flow control; read the final reply.

    aiosmtplib's public ``data()`` takes the whole message as one ``bytes`` (and copies it twice
    more for line endings and dot-stuffing), so the body is written through its protocol object
    instead: ``write`` plus the protocol's drain helper, then ``read_response``.
    """
    protocol = client.protocol
    if protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    # Expect a reply from here on, so an early error reply is kept, not dropped as unsolicited.
    protocol._response_pending = True
    # Coalesce slices into writes of up to _WRITE_SIZE (fewer syscalls; a small message and
    # its terminating dot go out in one write), with flow control between writes.
    pending = bytearray()
    for chunk in message.chunks(smtp=True):
        pending += chunk
        if len(pending) >= _WRITE_SIZE:
            protocol.write(bytes(pending))
            pending.clear()
            await protocol._drain_helper()
    pending += b".\r\n"
    protocol.write(bytes(pending))
    return await protocol.read_response(timeout=None)


async def _reset(conn: SmtpConnection, budget: float | None) -> None:
    """RSET after a refused envelope so the session can be reused; drop it if that fails."""
    if not conn.client.is_connected:
        conn.reusable = False
        return
    try:
        response = await conn.client.rset(timeout=_short(budget))
    except (aiosmtplib.SMTPException, OSError):
        conn.reusable = False
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

"""A real SMTP server for tests and benchmarks: aiosmtpd in its own thread and event loop.

It speaks the protocol for real (plaintext, STARTTLS, implicit TLS; AUTH PLAIN, LOGIN and
XOAUTH2) and, when given a :class:`~tests.servers.dovecot.DovecotServer`, relays every accepted
message into Dovecot over LMTP before answering ``250``, so a test can read it back over IMAP.
Counters (connections, AUTH attempts, messages) let tests prove pooling and "nothing was sent".
``mode = "drop_after_data"`` closes the connection after receiving a message body without
answering, which is how an ambiguous send looks to a client; ``"tempfail_data"`` answers every
body with 451; ``"data_after_refusals"`` refuses recipients at ``unknown.test`` yet starts DATA
(as some servers do; RFC 2920 makes the client cope). Senders at ``refused.test`` are refused;
a sender at ``closing.test`` gets ``421`` and the connection is closed.

Like real servers (Postfix, Exchange, Gmail) it advertises ``PIPELINING``; set ``pipelining``
to ``False`` to hide it. With ``recording`` on, every chunk of bytes the server reads is kept in
``received``: commands that arrive in one chunk were pipelined by the client.

It runs in a thread of its own so that blocking clients (``smtplib`` in the benchmark) and the
tests' own ``asyncio.run`` loops never share a loop with it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import smtplib
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.servers.dovecot import DovecotServer, TlsFiles

__all__ = ["SmtpTestServer", "running_smtp_server"]


@dataclass
class _State:
    connections: int = 0
    auth_attempts: int = 0
    auth_failures: int = 0
    data_commands: int = 0
    empty_bodies: int = 0
    messages: list[Envelope] = field(default_factory=list)
    users: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    mode: str = "accept"
    pipelining: bool = True
    recording: bool = False
    received: list[bytes] = field(default_factory=list)
    transports: set[asyncio.BaseTransport] = field(default_factory=set)


class _Handler:
    def __init__(self, state: _State, relay: DovecotServer | None) -> None:
        self.state = state
        self.relay = relay

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if self.state.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.endswith("@refused.test"):
            return "550 5.7.1 sender refused"
        if address.endswith("@closing.test"):
            assert server.transport is not None
            asyncio.get_running_loop().call_soon(server.transport.close)  # after the reply
            return "421 4.3.2 service shutting down"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.endswith("@unknown.test"):
            if self.state.mode == "data_after_refusals":
                envelope.rcpt_tos.append(address)  # refused, yet DATA will be started
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.state.data_commands += 1
        if self.state.mode == "drop_after_data":
            assert server.transport is not None
            server.transport.abort()
            return "250 2.0.0 dropped (never seen by the client)"
        if self.state.mode == "tempfail_data":
            return "451 4.3.0 try again later"
        if self.state.mode == "data_after_refusals" and all(
            rcpt.endswith("@unknown.test") for rcpt in envelope.rcpt_tos
        ):
            self.state.empty_bodies += envelope.content == b""
            return "554 5.5.1 no valid recipients"
        self.state.messages.append(envelope)
        if self.relay is not None:
            try:
                await asyncio.to_thread(_lmtp, self.relay, envelope)
            except smtplib.SMTPRecipientsRefused:
                return "550 5.1.1 no such mailbox"
        return "250 2.0.0 OK queued"


def _lmtp(relay: DovecotServer, envelope: Envelope) -> None:
    assert isinstance(envelope.content, bytes)
    # One transaction per recipient: LMTP answers DATA once per recipient, which smtplib's
    # LMTP client does not read.
    with smtplib.LMTP("127.0.0.1", relay.lmtp_port, timeout=60) as lmtp:
        for recipient in envelope.rcpt_tos:
            lmtp.sendmail(envelope.mail_from or "", [recipient], envelope.content)


class _QuietSession(Session):
    """aiosmtpd logs a deprecation warning on every successful AUTH through this property."""

    @property  # type: ignore[override]
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class _Smtp(SMTP):
    state: _State

    def _create_session(self) -> Session:
        return _QuietSession(self.loop)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is None:  # not the STARTTLS re-entry
            self.state.connections += 1
            self.state.transports.add(transport)
        super().connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.state.recording:
            self.state.received.append(data)
        super().data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._original_transport is not None:
            self.state.transports.discard(self._original_transport)
        if self.transport is not None:
            self.state.transports.discard(self.transport)
        super().connection_lost(exc)

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        """XOAUTH2 as Gmail does it: on a bad token, an error challenge, then 535."""
        self.state.auth_attempts += 1
        if len(args) > 1:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except binascii.Error:
                return AuthResult(success=False, handled=False, message="501 5.5.2 bad base64")
        else:
            answer = await server.challenge_auth("")
            if not isinstance(answer, bytes):
                return AuthResult(success=False, handled=False)
            blob = answer
        fields = dict(
            part.split("=", 1)
            for part in blob.decode("utf-8", "replace").split("\x01")
            if "=" in part
        )
        user = fields.get("user", "")
        token = fields.get("auth", "").removeprefix("Bearer ")
        if user and self.state.tokens.get(token) == user:
            return AuthResult(success=True, auth_data=user)
        self.state.auth_failures += 1
        error = json.dumps(
            {"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"}
        )
        await server.challenge_auth(error)  # the client answers with an empty line
        return AuthResult(
            success=False, handled=False, message="535 5.7.8 Username and Password not accepted"
        )


class SmtpTestServer:
    """One listening aiosmtpd server. Build it with :func:`running_smtp_server`."""

    def __init__(
        self,
        state: _State,
        port: int,
        tls: TlsFiles | None,
        security: str,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._state = state
        self._loop = loop
        self.host = "127.0.0.1"
        self.port = port
        self.tls = tls
        self.security = security

    # counters and knobs
    @property
    def connections(self) -> int:
        return self._state.connections

    @property
    def auth_attempts(self) -> int:
        return self._state.auth_attempts

    @property
    def auth_failures(self) -> int:
        return self._state.auth_failures

    @property
    def data_commands(self) -> int:
        return self._state.data_commands

    @property
    def empty_bodies(self) -> int:
        """Bodies that were empty (a client ending a DATA it should not have started)."""
        return self._state.empty_bodies

    @property
    def messages(self) -> list[Envelope]:
        return self._state.messages

    @property
    def received(self) -> list[bytes]:
        """The chunks read from clients while ``recording`` was on."""
        return self._state.received

    @property
    def recording(self) -> bool:
        return self._state.recording

    @recording.setter
    def recording(self, value: bool) -> None:
        self._state.recording = value

    @property
    def pipelining(self) -> bool:
        """Whether EHLO advertises PIPELINING (to new sessions)."""
        return self._state.pipelining

    @pipelining.setter
    def pipelining(self, value: bool) -> None:
        self._state.pipelining = value

    @property
    def mode(self) -> str:
        return self._state.mode

    @mode.setter
    def mode(self, value: str) -> None:
        self._state.mode = value

    def add_user(self, user: str, password: str) -> None:
        self._state.users[user] = password

    def grant_token(self, token: str, user: str) -> None:
        self._state.tokens[token] = user

    def drop_connections(self) -> None:
        """Abort every open client connection (as a server does after an idle timeout)."""

        async def drop() -> None:
            for transport in list(self._state.transports):
                transport.abort()
            await asyncio.sleep(0.01)

        asyncio.run_coroutine_threadsafe(drop(), self._loop).result(5)

    def reset_counters(self) -> None:
        state = self._state
        state.connections = state.auth_attempts = state.auth_failures = state.data_commands = 0
        state.empty_bodies = 0
        state.messages.clear()
        state.received.clear()
        state.mode = "accept"
        state.pipelining = True
        state.recording = False


@contextmanager
def running_smtp_server(
    *,
    security: str = "none",
    tls: TlsFiles | None = None,
    relay: DovecotServer | None = None,
    data_size_limit: int = 64 * 1024 * 1024,
) -> Iterator[SmtpTestServer]:
    """Start a server in a thread (``security``: none, starttls or tls); stop it after."""
    state = _State()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name=f"smtp-{security}", daemon=True)
    thread.start()
    context: ssl.SSLContext | None = None
    if security != "none":
        assert tls is not None, "TLS modes need certificate files"
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls.cert_file, tls.key_file)

    def authenticator(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: object
    ) -> AuthResult:
        state.auth_attempts += 1
        if isinstance(auth_data, LoginPassword):
            user = auth_data.login.decode()
            if state.users.get(user) == auth_data.password.decode():
                return AuthResult(success=True, auth_data=user)
        state.auth_failures += 1
        return AuthResult(success=False, handled=False)

    def factory() -> SMTP:
        smtp = _Smtp(
            _Handler(state, relay),
            hostname="localhost",
            data_size_limit=data_size_limit,
            tls_context=context if security == "starttls" else None,
            require_starttls=security == "starttls",
            # aiosmtpd cannot tell an implicit-TLS socket is encrypted (aiosmtpd#281)
            auth_require_tls=security == "starttls",
            authenticator=authenticator,
            # aiosmtpd warns (an error under pytest) when AUTH is required without TLS.
            auth_required=security == "starttls",
        )
        smtp.state = state
        return smtp

    async def start() -> asyncio.AbstractServer:
        return await loop.create_server(
            factory, "127.0.0.1", 0, ssl=context if security == "tls" else None
        )

    server = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    port = int(server.sockets[0].getsockname()[1])
    try:
        yield SmtpTestServer(state, port, tls, security, loop)
    finally:

        async def stop() -> None:
            server.close()
            for transport in list(state.transports):
                transport.close()
            await server.wait_closed()
            for _ in range(20):  # let connection_lost callbacks and handler tasks finish
                await asyncio.sleep(0.01)

        with suppress(TimeoutError):
            asyncio.run_coroutine_threadsafe(stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _serve_forever() -> None:
    """``python -m tests.adapters.email.smtp_server USER PASSWORD``: a plaintext server in its
    own process (benchmarks: the server must not share the client's GIL). Prints the port, runs
    until stdin closes, then prints the number of messages received."""
    import sys

    user, password = sys.argv[1], sys.argv[2]
    with running_smtp_server() as server:
        server.add_user(user, password)
        print(server.port, flush=True)
        sys.stdin.read()
        print(len(server.messages), flush=True)


if __name__ == "__main__":
    _serve_forever()

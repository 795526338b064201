"""IMAP sessions over IMAPClient (blocking) run in worker threads, and a small pool of them.

IMAPClient is synchronous, so every command runs in ``asyncio.to_thread`` and a session is used
by one thread at a time. :class:`ImapPool` keeps up to ``size`` logged-in sessions; a session
whose command failed in a way that leaves it in doubt (a broken connection, a budget, a
cancelled call) is shut down rather than reused. Logins use LOGIN for passwords (refused locally,
without sending the password, when the server advertises ``LOGINDISABLED`` on a plaintext
connection) or XOAUTH2, with one token refresh and one retry after a rejection.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from imapclient import IMAPClient

from connectors.adapters.email.classify import ImapPhase, imap_error
from connectors.adapters.email.settings import ServerSettings
from connectors.adapters.email.xoauth2 import TokenSource, XOAuth2Mechanism
from connectors.errors import (
    AmbiguousOutcome,
    AuthenticationFailed,
    ConnectionFailed,
    ConnectorError,
    Timeout,
)
from connectors.secrets import Secret

__all__ = ["FolderState", "ImapPool", "ImapSession", "in_thread"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class FolderState:
    """What SELECT said about a folder."""

    name: str
    uidvalidity: int
    uidnext: int
    exists: int


class ImapSession:
    """One connected IMAPClient. Its methods block: call them from a worker thread."""

    def __init__(self, client: IMAPClient, address: str) -> None:
        self.client = client
        self.address = address
        self.selected: FolderState | None = None
        #: Set when the session must not be reused.
        self.broken = False

    # --- set-up (blocking) ------------------------------------------------------------------

    @classmethod
    def connect(cls, server: ServerSettings, budget: float) -> ImapSession:
        """Connect (implicit TLS, STARTTLS or plaintext as configured)."""
        try:
            if server.security == "tls":
                client = IMAPClient(
                    server.host,
                    server.port,
                    ssl=True,
                    ssl_context=server.ssl_context(),
                    timeout=budget,
                )
            else:
                client = IMAPClient(server.host, server.port, ssl=False, timeout=budget)
        except Exception as exc:
            raise imap_error(exc, "connect", server.address) from exc
        session = cls(client, server.address)
        if server.security == "starttls":
            try:
                client.starttls(server.ssl_context())
            except Exception as exc:
                session.kill()
                raise imap_error(exc, "connect", server.address) from exc
        return session

    def login(self, user: str, password: Secret) -> None:
        """LOGIN, unless the server says plaintext login is disabled on this connection."""
        try:
            if b"LOGINDISABLED" in self.client.capabilities():
                raise AuthenticationFailed(
                    f"the IMAP server at {self.address} disables login on this unencrypted "
                    "connection (LOGINDISABLED); the password was not sent",
                    provider_code="PRIVACYREQUIRED",
                    hint="use imap_security: starttls or tls",
                )
            self.client.login(user, password.reveal())
        except Exception as exc:
            raise imap_error(exc, "login", self.address) from exc

    def xoauth2(self, user: str, token: Secret) -> None:
        """AUTHENTICATE XOAUTH2 (answers the error challenge with an empty line)."""
        mechanism = XOAuth2Mechanism(user, token)
        try:
            self.client.sasl_login("XOAUTH2", mechanism)
        except Exception as exc:
            raise imap_error(exc, "login", self.address) from exc

    # --- use (blocking) -------------------------------------------------------------------------

    def select(self, folder: str, *, force: bool = False) -> FolderState:
        """SELECT ``folder`` unless it is already selected (``force``: always, for UIDVALIDITY)."""
        if not force and self.selected is not None and self.selected.name == folder:
            return self.selected
        self.selected = None
        data = self.client.select_folder(folder)
        state = FolderState(
            name=folder,
            uidvalidity=int(data.get(b"UIDVALIDITY", 0)),
            uidnext=int(data.get(b"UIDNEXT", 0)),
            exists=int(data.get(b"EXISTS", 0)),
        )
        self.selected = state
        return state

    def call(self, fn: Callable[[ImapSession], T], budget: float, phase: ImapPhase) -> T:
        """Run ``fn`` with a socket budget; translate failures; mark the session broken if the
        failure leaves it in doubt."""
        try:
            sock = self.client.socket()
            sock.settimeout(budget)
            return fn(self)
        except Exception as exc:
            error = imap_error(exc, phase, self.address)
            if isinstance(error, AmbiguousOutcome | Timeout | ConnectionFailed):
                self.broken = True
            if isinstance(exc, ConnectorError):
                raise
            raise error from exc

    def noop(self) -> None:
        self.client.noop()

    def kill(self) -> None:
        """Close the socket now (from any thread): unblocks a thread stuck in a read."""
        self.broken = True
        with contextlib.suppress(OSError):
            self.client.socket().shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError, AttributeError):
            self.client.shutdown()

    def logout(self) -> None:
        try:
            self.client.logout()
        except Exception:  # the connection may already be gone; closing is all we want
            self.kill()


class ImapPool:
    """Up to ``size`` logged-in IMAP sessions for one account."""

    def __init__(
        self, server: ServerSettings, *, tokens: TokenSource | None, size: int = 2
    ) -> None:
        self.server = server
        self._tokens = tokens
        self._slots = asyncio.Semaphore(size)
        self._idle: list[ImapSession] = []
        self._closed = False
        self.opened = 0

    async def run(self, fn: Callable[[ImapSession], T], *, budget: float) -> T:
        """Run ``fn(session)`` in a worker thread on a pooled session."""
        try:
            async with asyncio.timeout(budget):
                await self._slots.acquire()
        except TimeoutError:
            raise Timeout(
                f"no IMAP session became free within {budget:.1f}s", request_sent=False
            ) from None
        session: ImapSession | None = None
        result: T
        try:
            session = self._idle.pop() if self._idle else await self.open(budget)
            result = await in_thread(session, session.call, fn, budget, "command")
        except BaseException:
            if session is not None and session.broken:
                await asyncio.to_thread(session.kill)
                session = None
            raise
        finally:
            if session is not None:
                if self._closed or session.broken:
                    await asyncio.to_thread(session.logout)
                else:
                    self._idle.append(session)
            self._slots.release()
        return result

    async def open(self, budget: float) -> ImapSession:
        """A new logged-in session outside the pool (IDLE and health checks use this)."""
        session = await asyncio.to_thread(ImapSession.connect, self.server, budget)
        try:
            await self._login(session, budget)
        except BaseException:
            await asyncio.to_thread(session.kill)
            raise
        self.opened += 1
        return session

    async def _login(self, session: ImapSession, budget: float) -> None:
        server = self.server
        if server.auth == "none":
            return
        assert server.username is not None
        if server.auth != "xoauth2":
            assert server.password is not None
            await in_thread(session, session.login, server.username, server.password)
            return
        assert self._tokens is not None
        token = await self._tokens.current()
        try:
            await in_thread(session, session.xoauth2, server.username, token)
        except AuthenticationFailed:
            fresh = await self._tokens.refreshed(token)
            if fresh is None:
                raise
            await in_thread(session, session.xoauth2, server.username, fresh)

    async def close(self) -> None:
        """Log out every idle session."""
        self._closed = True
        idle, self._idle = self._idle, []
        for session in idle:
            await asyncio.to_thread(session.logout)


async def in_thread(session: ImapSession, fn: Callable[..., T], *args: object) -> T:
    """``asyncio.to_thread`` that kills the session if the caller is cancelled meanwhile (the
    thread cannot be stopped, but closing its socket makes it return at once)."""
    task = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        session.kill()
        # The session is dead: the thread's failure is expected and irrelevant.
        with contextlib.suppress(BaseException):
            await task
        raise

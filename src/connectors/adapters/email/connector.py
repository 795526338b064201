"""The ``email`` adapter: send over SMTP, read and manage mail over IMAP.

::

    async with hub.open("email", tenant_id="acme", settings={...}) as mail:
        result = await mail.send(OutgoingEmail(to=["bob@example.com"], subject="Hi", text="..."))
        await mail.send_text(["bob@example.com"], "Hi", "...")   # the same, from plain values
        uids = await mail.search("INBOX", Criteria().unseen().from_("alice@example.com"))
        for message in await mail.fetch("INBOX", uids):
            ...
        batch = await mail.fetch_new("INBOX")          # incremental, from a stored watermark
        async for message in mail.idle("INBOX"):       # push, on its own connection
            ...

Every method is an ``@operation``: access checks, audit, metrics and logs come from the base
class; SMTP and IMAP I/O runs through ``self.attempt`` (retry, breaker, rate limits, bulkhead).
A send is *not idempotent*: it is retried only when the server cannot have accepted the message
(see :mod:`.classify`), unless ``retry_ambiguous=True``. Provider OAuth scopes depend on the
provider, so operations declare none; :data:`PROVIDER_SCOPES` lists what to request.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
import re
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Final, TypeVar

from connectors.adapters.email import mailbox
from connectors.adapters.email.criteria import Criteria
from connectors.adapters.email.idle import watch
from connectors.adapters.email.imap import ImapPool, ImapSession, in_thread
from connectors.adapters.email.mailbox import Folder
from connectors.adapters.email.message import OutgoingEmail, prepare
from connectors.adapters.email.parse import EmailMessage
from connectors.adapters.email.settings import EmailSettings, ServerSettings
from connectors.adapters.email.smtp import SendResult, SmtpPool, deliver
from connectors.adapters.email.watermark import (
    MemoryWatermarkStore,
    SqlWatermarkStore,
    SyncResult,
    Watermark,
    WatermarkStore,
    plan_sync,
)
from connectors.adapters.email.xoauth2 import TokenSource
from connectors.base import Connector, operation
from connectors.errors import (
    ConfigurationError,
    Conflict,
    ConnectorError,
    FieldError,
    InvalidRequest,
    InvalidSetting,
    NotFound,
)
from connectors.observability.health import Health, HealthCheck, HealthStatus
from connectors.resilience import Attempt, RateLimit
from connectors.storage.db import Database

__all__ = ["PROVIDER_SCOPES", "EmailConnector"]

T = TypeVar("T")

#: OAuth scopes to request for XOAUTH2, by provider (``offline_access`` for refresh tokens).
PROVIDER_SCOPES: Final = {
    "gmail": ("https://mail.google.com/",),
    "microsoft365": (
        "https://outlook.office.com/SMTP.Send",
        "https://outlook.office.com/IMAP.AccessAsUser.All",
        "offline_access",
    ),
}


def _recipients(recipients: Sequence[object]) -> str:
    first = str(recipients[0]) if recipients else "(none)"
    return first if len(recipients) == 1 else f"{first} (+{len(recipients) - 1})"


def _send_target(message: OutgoingEmail, **_: object) -> str:
    return _recipients([*message.to, *message.cc, *message.bcc])


def _text_target(
    to: Sequence[str] | str = (),
    cc: Sequence[str] | str | None = None,
    bcc: Sequence[str] | str | None = None,
    **_: object,
) -> str:
    return _recipients([*_addresses(to), *_addresses(cc), *_addresses(bcc)])


def _addresses(value: Sequence[str] | str | None) -> tuple[str, ...]:
    """One address or a list of them, as a tuple (a workflow gives either)."""
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def _folder_target(folder: str = "INBOX", **_: object) -> str:
    return folder


class EmailConnector(Connector):
    """SMTP sending and IMAP reading for one tenant's mail account."""

    name = "email"
    version = "1.0.0"

    config: EmailSettings
    _smtp: SmtpPool | None
    _imap: ImapPool | None
    _watermarks: WatermarkStore
    _owned_database: Database | None

    # --- lifecycle ------------------------------------------------------------------------------

    async def on_connect(self) -> None:
        """Parse the settings and build the (lazy) pools; no connection is opened yet."""
        config = EmailSettings.from_mapping(self.runtime.settings)
        if config.smtp is None and config.imap is None:
            raise InvalidSetting(
                "smtp_host", None, "smtp_host and/or imap_host (nothing to connect to)"
            )
        self.config = config
        tokens: TokenSource | None = None
        if any(s is not None and s.uses_oauth() for s in (config.smtp, config.imap)):
            tokens = TokenSource(
                tenant=self.tenant,
                manager=(
                    self.runtime.token_manager() if config.oauth_credential is not None else None
                ),
                credential=config.oauth_credential,
                static=config.access_token,
            )
        self._smtp = (
            SmtpPool(
                config.smtp,
                tokens=tokens,
                local_hostname=config.local_hostname,
                max_size=config.smtp_pool_size,
                max_messages=config.smtp_max_messages_per_connection,
                noop_after=config.smtp_noop_after,
                clock=self.runtime.clock,
            )
            if config.smtp is not None
            else None
        )
        self._imap = (
            ImapPool(config.imap, tokens=tokens, size=config.imap_pool_size)
            if config.imap is not None
            else None
        )
        self._send_limits: tuple[RateLimit, ...] = (
            (RateLimit(key="send", rate=config.send_rate, burst=config.send_burst),)
            if config.send_rate is not None
            else ()
        )
        self._owned_database = None
        if config.database is not None:
            self._watermarks = SqlWatermarkStore(config.database)
        elif config.database_url is not None:
            self._owned_database = Database(config.database_url)
            self._watermarks = SqlWatermarkStore(self._owned_database)
        else:
            self._watermarks = MemoryWatermarkStore()

    async def on_disconnect(self) -> None:
        """Close both pools and a database this connector opened itself."""
        try:
            if getattr(self, "_smtp", None) is not None:
                assert self._smtp is not None
                await self._smtp.close()
            if getattr(self, "_imap", None) is not None:
                assert self._imap is not None
                await self._imap.close()
        finally:
            if getattr(self, "_owned_database", None) is not None:
                assert self._owned_database is not None
                await self._owned_database.dispose()

    # --- health -----------------------------------------------------------------------------------

    async def health_check(self) -> Health:
        """SMTP: connect, EHLO, TLS, AUTH, NOOP. IMAP: connect, login, NOOP. One check each."""
        checks: list[HealthCheck] = []
        clock = self.runtime.clock
        if self._smtp is not None:
            assert self.config.smtp is not None
            started = clock.monotonic()
            try:
                await self._smtp.probe(self.config.smtp.timeout)
            except ConnectorError as exc:
                checks.append(_failed("smtp", self.config.smtp, exc, clock.time()))
            else:
                checks.append(
                    _ok("smtp", self.config.smtp, clock.monotonic() - started, clock.time())
                )
        if self._imap is not None:
            assert self.config.imap is not None
            started = clock.monotonic()
            try:
                session = await self._imap.open(self.config.imap.timeout)
                try:
                    await self._imap_direct(session, lambda s: s.noop())
                finally:
                    await _logout(session)
            except ConnectorError as exc:
                checks.append(_failed("imap", self.config.imap, exc, clock.time()))
            else:
                checks.append(
                    _ok("imap", self.config.imap, clock.monotonic() - started, clock.time())
                )
        return Health.from_checks(checks)

    async def _imap_direct(self, session: ImapSession, fn: Callable[[ImapSession], T]) -> T:
        assert self.config.imap is not None
        return await in_thread(session, session.call, fn, self.config.imap.timeout, "command")

    # --- SMTP -------------------------------------------------------------------------------------

    @operation(idempotent=False, audit_target=_send_target)
    async def send(self, message: OutgoingEmail, *, retry_ambiguous: bool = False) -> SendResult:
        """Send ``message``; returns its Message-ID and the accepted and refused recipients.

        Bad input (addresses, header injection, missing attachment files) is refused before any
        connection is opened. ``retry_ambiguous=True`` also retries when the connection broke
        after the body was sent (the same Message-ID is sent again, so receivers can dedupe).
        """
        return await self._send(message, retry_ambiguous=retry_ambiguous)

    @operation(idempotent=False, audit_target=_text_target)
    async def send_text(
        self,
        to: Sequence[str] | str,
        subject: str,
        text: str,
        *,
        cc: Sequence[str] | str | None = None,
        bcc: Sequence[str] | str | None = None,
        reply_to: Sequence[str] | str | None = None,
        html: str | None = None,
    ) -> SendResult:
        """Send a text (optionally also HTML) message built from plain arguments.

        The mapping-friendly form of :meth:`send` for workflows and other callers that cannot
        build an :class:`OutgoingEmail`: addresses are one string or a list of strings. Same
        checks, pooling, retries and (not idempotent) semantics as :meth:`send`.
        """
        message = OutgoingEmail(
            to=_addresses(to),
            subject=subject,
            text=text,
            html=html,
            cc=_addresses(cc),
            bcc=_addresses(bcc),
            reply_to=_addresses(reply_to),
        )
        return await self._send(message, retry_ambiguous=False)

    async def _send(self, message: OutgoingEmail, *, retry_ambiguous: bool) -> SendResult:
        """The one send path: validate and build locally, then deliver through ``attempt``."""
        pool = self._need_smtp()
        prepared = prepare(
            message,
            default_from=self.config.default_from,
            message_id_domain=self.config.message_id_domain,
            now=self.runtime.clock.time(),
        )
        server = pool.server

        async def once(attempt: Attempt) -> SendResult:
            budget = _timeout(attempt, server)
            async with pool.connection(budget) as conn:
                return await deliver(conn, prepared, budget)

        return await self.attempt(
            once,
            idempotent=retry_ambiguous,
            rate_limits=self._send_limits,
            enforce_timeout=False,
        )

    @property
    def smtp_pool(self) -> SmtpPool:
        """The SMTP pool (its ``stats`` show opened and reused connections)."""
        return self._need_smtp()

    # --- IMAP: reading ----------------------------------------------------------------------------

    @operation(idempotent=True)
    async def list_folders(self) -> list[Folder]:
        """Every mailbox with its flags (``\\Sent``, ``\\Trash``...)."""
        return await self._imap_call(mailbox.list_folders)

    @operation(idempotent=True, audit_target=_folder_target)
    async def search(
        self, folder: str = "INBOX", criteria: Criteria | None = None, *, limit: int | None = None
    ) -> list[int]:
        """UIDs matching ``criteria`` (all messages without), ascending; ``limit`` keeps the
        newest ones."""
        query = criteria if criteria is not None else Criteria()
        _limit(limit)
        uids = await self._imap_call(lambda s: mailbox.search(s, folder, query))
        return uids[-limit:] if limit else uids

    @operation(idempotent=True, audit_target=_folder_target)
    async def fetch(self, folder: str, uids: Sequence[int]) -> list[EmailMessage]:
        """Messages with headers, text, HTML and attachment metadata (not attachment bodies)."""
        wanted = _uids(uids)
        return await self._imap_call(lambda s: mailbox.fetch_messages(s, folder, wanted))

    @operation(idempotent=True, audit_target=_folder_target)
    async def fetch_headers(self, folder: str, uids: Sequence[int]) -> list[EmailMessage]:
        """The fast path: address, subject, date and id headers, flags and size only."""
        wanted = _uids(uids)
        return await self._imap_call(lambda s: mailbox.fetch_headers(s, folder, wanted))

    @operation(idempotent=True, audit_target=lambda message, **_: message.folder)
    async def download_attachment(self, message: EmailMessage, index: int) -> bytes:
        """The decoded content of ``message.attachments[index]``, fetched now."""
        if not 0 <= index < len(message.attachments):
            raise InvalidRequest(
                f"message {message.uid} has {len(message.attachments)} attachment(s); "
                f"index {index} does not exist",
                fields=(FieldError("index", "out of range"),),
            )
        info = message.attachments[index]

        def fetch(session: ImapSession) -> bytes | None:
            state = session.select(message.folder, force=True)
            if state.uidvalidity != message.uidvalidity:
                raise Conflict(
                    f"{message.folder} changed UIDVALIDITY since the message was fetched; "
                    f"UID {message.uid} no longer names it",
                    provider_code="UIDVALIDITY",
                )
            return mailbox.fetch_section(
                session, message.folder, message.uid, info.section, info.encoding
            )

        data = await self._imap_call(fetch)
        if data is None:
            raise NotFound(f"message UID {message.uid} is no longer in {message.folder}")
        return data

    # --- IMAP: incremental sync ----------------------------------------------------------------

    @operation(idempotent=True, audit_target=_folder_target)
    async def fetch_new(
        self,
        folder: str = "INBOX",
        *,
        limit: int | None = None,
        headers_only: bool = False,
        commit: bool = True,
    ) -> SyncResult:
        """Messages that arrived since the stored watermark (per tenant, account and folder).

        If the folder's UIDVALIDITY changed, the watermark is void: the fetch starts over from
        the first message and the result says ``reset=True``. With ``commit=False`` the
        watermark is saved only by :meth:`commit_watermark` (after the caller processed the
        batch: at-least-once instead of at-most-once).
        """
        _limit(limit)
        account = self._account()
        stored = await self._watermarks.load(self.tenant, account, folder)

        def changes(session: ImapSession) -> tuple[int, list[int], int, bool, int | None]:
            state = session.select(folder, force=True)
            plan = plan_sync(stored, state.uidvalidity)
            _, uids = mailbox.uids_after(session, folder, plan.last_uid)
            return state.uidvalidity, uids, plan.last_uid, plan.reset, plan.previous_uidvalidity

        uidvalidity, uids, previous, reset, previous_validity = await self._imap_call(changes)
        more = bool(limit) and len(uids) > (limit or 0)
        batch = uids[:limit] if limit else uids
        fetcher = mailbox.fetch_headers if headers_only else mailbox.fetch_messages
        messages = await self._imap_call(lambda s: fetcher(s, folder, batch)) if batch else []
        last = max(batch) if batch else previous
        result = SyncResult(
            tenant=self.tenant,
            account=account,
            folder=folder,
            uidvalidity=uidvalidity,
            messages=tuple(messages),
            previous_uid=previous,
            last_uid=last,
            reset=reset,
            previous_uidvalidity=previous_validity,
            more=more,
            committed=commit,
        )
        if commit:
            await self._watermarks.save(self.tenant, account, folder, result.watermark)
        return result

    @operation(idempotent=True, audit_target=lambda result, **_: result.folder)
    async def commit_watermark(self, result: SyncResult) -> None:
        """Save the position of a ``fetch_new(commit=False)`` batch once it was processed."""
        if result.tenant != self.tenant:
            raise InvalidRequest("this sync result belongs to another tenant")
        await self._watermarks.save(self.tenant, result.account, result.folder, result.watermark)

    async def watermark(self, folder: str = "INBOX") -> Watermark | None:
        """The stored sync position of ``folder`` (no I/O with the mail server)."""
        return await self._watermarks.load(self.tenant, self._account(), folder)

    # --- IMAP: changing -----------------------------------------------------------------------

    @operation(idempotent=True, audit_target=_folder_target)
    async def add_flags(self, folder: str, uids: Sequence[int], flags: Sequence[str]) -> None:
        """Add flags (``\\Seen``, ``\\Flagged``, keywords) to messages."""
        wanted, names = _uids(uids), _flags(flags)
        await self._imap_call(lambda s: mailbox.set_flags(s, folder, wanted, names, add=True))

    @operation(idempotent=True, audit_target=_folder_target)
    async def remove_flags(self, folder: str, uids: Sequence[int], flags: Sequence[str]) -> None:
        """Remove flags from messages."""
        wanted, names = _uids(uids), _flags(flags)
        await self._imap_call(lambda s: mailbox.set_flags(s, folder, wanted, names, add=False))

    @operation(idempotent=False, audit_target=_folder_target)
    async def move(self, folder: str, uids: Sequence[int], destination: str) -> None:
        """Move messages to ``destination`` (UID MOVE, or COPY + delete without MOVE)."""
        wanted = _uids(uids)
        await self._imap_call(lambda s: mailbox.move(s, folder, wanted, destination))

    @operation(idempotent=True, audit_target=_folder_target)
    async def delete(self, folder: str, uids: Sequence[int], *, expunge: bool = True) -> None:
        """Flag messages ``\\Deleted`` and, by default, expunge exactly those UIDs."""
        wanted = _uids(uids)
        await self._imap_call(lambda s: mailbox.delete(s, folder, wanted, expunge=expunge))

    @operation(idempotent=False, audit_target=_folder_target)
    async def append(
        self,
        folder: str,
        message: bytes | OutgoingEmail,
        *,
        flags: Sequence[str] = (),
        date: dt.datetime | None = None,
    ) -> int | None:
        """Store a message in ``folder`` (e.g. a copy in Sent); returns its UID if reported."""
        if isinstance(message, OutgoingEmail):
            raw = prepare(
                message,
                default_from=self.config.default_from,
                message_id_domain=self.config.message_id_domain,
                now=self.runtime.clock.time(),
            ).as_bytes()
        else:
            raw = bytes(message)
        names = _flags(flags)
        return await self._imap_call(lambda s: mailbox.append(s, folder, raw, names, date))

    @operation(idempotent=False, audit_target=_folder_target)
    async def create_folder(self, folder: str) -> None:
        await self._imap_call(lambda s: mailbox.create_folder(s, folder))

    @operation(idempotent=False, audit_target=_folder_target)
    async def delete_folder(self, folder: str) -> None:
        await self._imap_call(lambda s: mailbox.delete_folder(s, folder))

    # --- IMAP: push -----------------------------------------------------------------------------

    @operation(idempotent=True, audit_target=_folder_target)
    async def idle(
        self, folder: str = "INBOX", *, headers_only: bool = False
    ) -> AsyncIterator[EmailMessage]:
        """Each message that arrives in ``folder`` from now on, pushed by IMAP IDLE.

        Uses its own connection (not the pool). Stop with ``break`` or ``aclose()``.
        """
        pool = self._need_imap()
        server = pool.server

        async def reopen() -> ImapSession:
            async def once(attempt: Attempt) -> ImapSession:
                return await pool.open(_timeout(attempt, server))

            return await self.attempt(once, idempotent=True, enforce_timeout=False)

        async for message in watch(
            folder,
            reopen=reopen,
            poll=self.config.idle_poll,
            renew=self.config.idle_renew,
            budget=server.timeout,
            clock=self.runtime.clock,
            headers_only=headers_only,
        ):
            yield message

    # --- helpers ----------------------------------------------------------------------------------

    async def _imap_call(self, fn: Callable[[ImapSession], T]) -> T:
        pool = self._need_imap()
        server = pool.server

        async def once(attempt: Attempt) -> T:
            return await pool.run(fn, budget=_timeout(attempt, server))

        return await self.attempt(once, enforce_timeout=False)

    def _need_smtp(self) -> SmtpPool:
        if self._smtp is None:
            raise ConfigurationError(
                "this email connector has no SMTP server", hint="set smtp_host to send mail"
            )
        return self._smtp

    def _need_imap(self) -> ImapPool:
        if self._imap is None:
            raise ConfigurationError(
                "this email connector has no IMAP server", hint="set imap_host to read mail"
            )
        return self._imap

    def _account(self) -> str:
        server = self.config.imap
        if server is None:
            return "-"
        return f"{server.username or ''}@{server.host}"


def _timeout(attempt: Attempt, server: ServerSettings) -> float:
    """Seconds for each network step: the server timeout, cut to what the attempt has left."""
    if math.isinf(attempt.timeout):
        return server.timeout
    return max(min(attempt.timeout, server.timeout), 0.001)


def _uids(uids: Sequence[int]) -> list[int]:
    if isinstance(uids, int):
        uids = [uids]
    wanted = []
    for uid in uids:
        if isinstance(uid, bool) or not isinstance(uid, int) or uid < 1:
            raise InvalidRequest(
                f"UIDs are positive integers, got {uid!r}", fields=(FieldError("uids", "invalid"),)
            )
        wanted.append(uid)
    return wanted


def _flags(flags: Sequence[str]) -> list[str]:
    names = [flags] if isinstance(flags, str) else list(flags)
    for flag in names:
        if not isinstance(flag, str) or not re.fullmatch(r"\\?[A-Za-z0-9$&+.\-_]+", flag):
            raise InvalidRequest(
                f"invalid IMAP flag {flag!r}: use \\Seen, \\Flagged or an atom like $Label",
                fields=(FieldError("flags", "invalid flag"),),
            )
    return names


def _limit(limit: int | None) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidRequest(
            "limit must be a positive integer", fields=(FieldError("limit", "invalid"),)
        )


def _ok(name: str, server: ServerSettings, seconds: float, now: float) -> HealthCheck:
    return HealthCheck(
        name=name,
        status=HealthStatus.HEALTHY,
        detail=f"{server.address} answered in {seconds * 1000:.0f} ms",
        observed_at=now,
        data={"address": server.address, "latency_ms": round(seconds * 1000, 1)},
    )


def _failed(name: str, server: ServerSettings, error: ConnectorError, now: float) -> HealthCheck:
    return HealthCheck(
        name=name,
        status=HealthStatus.UNHEALTHY,
        detail=f"{server.address}: {error.message}",
        observed_at=now,
        data={"address": server.address, "error": error.code},
    )


async def _logout(session: ImapSession) -> None:
    await asyncio.to_thread(session.logout)

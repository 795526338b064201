"""Incremental-sync watermarks: the last UID seen per tenant, account and mailbox.

A UID is only meaningful together with the mailbox's UIDVALIDITY: when the server changes
UIDVALIDITY (the mailbox was recreated, or the server rebuilt its index), every stored UID is
void and the sync must start over. The watermark therefore stores both, and
:func:`plan_sync` decides from them.

The table ``email_watermarks`` lives on the shared metadata (``connectors.storage.db.Base``);
:class:`SqlWatermarkStore` creates it on first use if it is missing (``checkfirst``), so the
embedded SQLite default works without a migration step. :class:`MemoryWatermarkStore` is used
when no database is configured (the watermark then lasts as long as the process).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import BigInteger, Connection, DateTime, String, Table, select
from sqlalchemy.orm import Mapped, mapped_column

from connectors.adapters.email.parse import EmailMessage
from connectors.storage.db import Base, Database

__all__ = [
    "EmailWatermarkRow",
    "MemoryWatermarkStore",
    "SqlWatermarkStore",
    "SyncPlan",
    "SyncResult",
    "Watermark",
    "WatermarkStore",
    "plan_sync",
]


class EmailWatermarkRow(Base):
    """One mailbox's sync position for one tenant and account."""

    __tablename__ = "email_watermarks"

    tenant: Mapped[str] = mapped_column(String(200), primary_key=True)
    account: Mapped[str] = mapped_column(String(400), primary_key=True)
    mailbox: Mapped[str] = mapped_column(String(500), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True, slots=True)
class Watermark:
    """The highest UID already handed out, valid only for ``uidvalidity``."""

    uidvalidity: int
    last_uid: int


@dataclass(frozen=True, slots=True)
class SyncPlan:
    """Where to resume: after ``last_uid``; ``reset`` when the old watermark was void."""

    last_uid: int
    reset: bool
    previous_uidvalidity: int | None


@dataclass(frozen=True, slots=True)
class SyncResult:
    """What an incremental fetch returned and where the next one resumes.

    ``reset`` is true when the mailbox's UIDVALIDITY changed since the stored watermark: the
    old UIDs are void and ``messages`` start again from the beginning of the mailbox (the
    caller should treat them as possibly seen before). ``more`` says a ``limit`` cut the batch.
    """

    tenant: str
    account: str
    folder: str
    uidvalidity: int
    messages: tuple[EmailMessage, ...]
    previous_uid: int
    last_uid: int
    reset: bool
    previous_uidvalidity: int | None
    more: bool
    committed: bool

    @property
    def watermark(self) -> Watermark:
        return Watermark(self.uidvalidity, self.last_uid)


def plan_sync(stored: Watermark | None, uidvalidity: int) -> SyncPlan:
    """Resume after the stored UID, or start from scratch if UIDVALIDITY changed."""
    if stored is None:
        return SyncPlan(last_uid=0, reset=False, previous_uidvalidity=None)
    if stored.uidvalidity != uidvalidity:
        return SyncPlan(last_uid=0, reset=True, previous_uidvalidity=stored.uidvalidity)
    return SyncPlan(last_uid=stored.last_uid, reset=False, previous_uidvalidity=uidvalidity)


class WatermarkStore(Protocol):
    """Where watermarks are kept."""

    async def load(self, tenant: str, account: str, mailbox: str) -> Watermark | None: ...

    async def save(self, tenant: str, account: str, mailbox: str, mark: Watermark) -> None: ...


class MemoryWatermarkStore:
    """Watermarks in a dict (lost when the process ends)."""

    def __init__(self) -> None:
        self._marks: dict[tuple[str, str, str], Watermark] = {}

    async def load(self, tenant: str, account: str, mailbox: str) -> Watermark | None:
        return self._marks.get((tenant, account, mailbox))

    async def save(self, tenant: str, account: str, mailbox: str, mark: Watermark) -> None:
        key = (tenant, account, mailbox)
        self._marks[key] = _merge(self._marks.get(key), mark)


def _merge(current: Watermark | None, new: Watermark) -> Watermark:
    """Never move backwards within one UIDVALIDITY (a late commit of an older batch)."""
    if current is not None and current.uidvalidity == new.uidvalidity:
        return Watermark(new.uidvalidity, max(current.last_uid, new.last_uid))
    return new


def _create_table(connection: Connection) -> None:
    table = EmailWatermarkRow.__table__
    assert isinstance(table, Table)
    table.create(connection, checkfirst=True)


class SqlWatermarkStore:
    """Watermarks in the ``email_watermarks`` table."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self._ready = False
        self._lock = asyncio.Lock()

    async def _ensure_table(self) -> None:
        if self._ready:
            return
        async with self._lock:
            if not self._ready:
                async with self.database.engine.begin() as conn:
                    await conn.run_sync(_create_table)
                self._ready = True

    async def load(self, tenant: str, account: str, mailbox: str) -> Watermark | None:
        await self._ensure_table()
        async with self.database.session() as session:
            row = await session.get(EmailWatermarkRow, (tenant, account, mailbox))
            return None if row is None else Watermark(row.uidvalidity, row.last_uid)

    async def save(self, tenant: str, account: str, mailbox: str, mark: Watermark) -> None:
        await self._ensure_table()
        async with self.database.session() as session:
            row = (
                await session.execute(
                    select(EmailWatermarkRow)
                    .where(
                        EmailWatermarkRow.tenant == tenant,
                        EmailWatermarkRow.account == account,
                        EmailWatermarkRow.mailbox == mailbox,
                    )
                    .with_for_update()
                )
            ).scalar_one_or_none()
            now = datetime.now(UTC)
            if row is None:
                session.add(
                    EmailWatermarkRow(
                        tenant=tenant,
                        account=account,
                        mailbox=mailbox,
                        uidvalidity=mark.uidvalidity,
                        last_uid=mark.last_uid,
                        updated_at=now,
                    )
                )
                return
            merged = _merge(Watermark(row.uidvalidity, row.last_uid), mark)
            row.uidvalidity = merged.uidvalidity
            row.last_uid = merged.last_uid
            row.updated_at = now

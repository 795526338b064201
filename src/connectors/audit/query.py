"""Reading the audit log back: filtered pages, streamed exports, and chain verification.

Pages are newest first with an opaque cursor (keyset paging on ``(timestamp, tenant, seq)``, so
a page costs the same however deep it is). Exports stream every matching event oldest first, as
JSON lines or CSV. Verification streams one tenant's rows in ``seq`` order through
:class:`~connectors.audit.chain.ChainVerifier` and checks the result against the chain head.
"""

from __future__ import annotations

import base64
import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.sql import Select

from connectors.audit._rows import chained_from_row, link_from_row
from connectors.audit.chain import AuditChain, ChainedEvent, ChainHead, ChainVerifier, VerifyResult
from connectors.audit.events import OUTCOMES, timestamp_us
from connectors.errors import InvalidRequest
from connectors.storage.audit import AuditChainHeadRow, AuditEventRow
from connectors.storage.db import Database

__all__ = [
    "EXPORT_COLUMNS",
    "AuditPage",
    "AuditQuery",
    "export",
    "list_events",
    "tenants",
    "verify",
    "verify_all",
]

MAX_LIMIT = 1000
_VERIFY_CHUNK = 1000
_EXPORT_PAGE = 500

#: Column order of CSV exports (``details`` as compact JSON).
EXPORT_COLUMNS = (
    "tenant",
    "seq",
    "id",
    "timestamp",
    "kind",
    "actor",
    "connector",
    "connector_version",
    "operation",
    "target",
    "outcome",
    "error_code",
    "status",
    "duration_ms",
    "attempts",
    "request_id",
    "credential_name",
    "credential_version",
    "details",
    "prev_hash",
    "hash",
)


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """Filters for :func:`list_events` and :func:`export`. ``since`` inclusive, ``until`` not."""

    tenant: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    connector: str | None = None
    outcome: str | None = None
    actor: str | None = None
    operation: str | None = None
    kind: str | None = None
    limit: int = 100
    cursor: str | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise InvalidRequest(f"limit must be between 1 and {MAX_LIMIT}, got {self.limit}")
        if self.outcome is not None and self.outcome not in OUTCOMES:
            raise InvalidRequest(
                f"outcome {self.outcome!r} is not one of {', '.join(sorted(OUTCOMES))}"
            )
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
                raise InvalidRequest(f"{name} must be a timezone-aware datetime")


@dataclass(frozen=True, slots=True)
class AuditPage:
    """One page of events, newest first; pass ``next_cursor`` back for the next page."""

    events: tuple[ChainedEvent, ...]
    next_cursor: str | None


_Key = tuple[int, str, int]


def _encode_cursor(key: _Key) -> str:
    raw = json.dumps(list(key), separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> _Key:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        ts, tenant, seq = json.loads(raw)
        if isinstance(ts, int) and isinstance(tenant, str) and isinstance(seq, int):
            return ts, tenant, seq
    except ValueError:
        pass
    raise InvalidRequest("invalid audit cursor: pass back the next_cursor of a previous page")


def _filtered(query: AuditQuery) -> Select[AuditEventRow]:
    t = AuditEventRow
    stmt = select(t)
    equal = {
        t.tenant: query.tenant,
        t.connector: query.connector,
        t.outcome: query.outcome,
        t.actor: query.actor,
        t.operation: query.operation,
        t.kind: query.kind,
    }
    for column, value in equal.items():
        if value is not None:
            stmt = stmt.where(column == value)
    if query.since is not None:
        stmt = stmt.where(t.ts_us >= timestamp_us(query.since))
    if query.until is not None:
        stmt = stmt.where(t.ts_us < timestamp_us(query.until))
    return stmt


def _after(key: _Key, *, descending: bool) -> ColumnElement[bool]:
    t = AuditEventRow
    ts, tenant, seq = key
    if descending:
        return or_(
            t.ts_us < ts,
            and_(t.ts_us == ts, t.tenant < tenant),
            and_(t.ts_us == ts, t.tenant == tenant, t.seq < seq),
        )
    return or_(
        t.ts_us > ts,
        and_(t.ts_us == ts, t.tenant > tenant),
        and_(t.ts_us == ts, t.tenant == tenant, t.seq > seq),
    )


async def _page(
    db: Database, query: AuditQuery, key: _Key | None, limit: int, *, descending: bool
) -> tuple[list[ChainedEvent], _Key | None]:
    t = AuditEventRow
    stmt = _filtered(query)
    if key is not None:
        stmt = stmt.where(_after(key, descending=descending))
    if descending:
        stmt = stmt.order_by(t.ts_us.desc(), t.tenant.desc(), t.seq.desc())
    else:
        stmt = stmt.order_by(t.ts_us, t.tenant, t.seq)
    async with db.session() as session:
        rows = list((await session.execute(stmt.limit(limit + 1))).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    events = [chained_from_row(r) for r in rows]
    last = rows[-1] if rows else None
    next_key = (last.ts_us, last.tenant, last.seq) if more and last is not None else None
    return events, next_key


async def list_events(db: Database, query: AuditQuery) -> AuditPage:
    """One page of matching events, newest first."""
    key = _decode_cursor(query.cursor) if query.cursor else None
    events, next_key = await _page(db, query, key, query.limit, descending=True)
    return AuditPage(tuple(events), _encode_cursor(next_key) if next_key else None)


def _csv_line(values: list[object]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(values)
    return out.getvalue()


def _csv_cell(value: object) -> object:
    # Spreadsheet formula injection: a cell starting with = + - @ would be evaluated.
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


async def export(
    db: Database, query: AuditQuery, fmt: Literal["jsonl", "csv"] = "jsonl"
) -> AsyncIterator[str]:
    """Every matching event, oldest first, one line per event (``limit``/``cursor`` ignored).

    CSV starts with a header row (:data:`EXPORT_COLUMNS`); text cells that a spreadsheet would
    read as a formula are prefixed with ``'``.
    """
    if fmt not in ("jsonl", "csv"):
        raise InvalidRequest(f"unknown export format {fmt!r}: use 'jsonl' or 'csv'")
    if fmt == "csv":
        yield _csv_line(list(EXPORT_COLUMNS))
    key: _Key | None = None
    while True:
        events, key = await _page(db, query, key, _EXPORT_PAGE, descending=False)
        for record in events:
            data = record.to_dict()
            if fmt == "jsonl":
                yield json.dumps(data, separators=(",", ":"), ensure_ascii=False) + "\n"
            else:
                data["details"] = json.dumps(data["details"], separators=(",", ":"))
                yield _csv_line([_csv_cell(data[c]) for c in EXPORT_COLUMNS])
        if key is None:
            return


async def tenants(db: Database) -> list[str]:
    """Every tenant with a chain head or an audit row."""
    async with db.session() as session:
        heads = set((await session.execute(select(AuditChainHeadRow.tenant))).scalars())
        rows = set((await session.execute(select(AuditEventRow.tenant).distinct())).scalars())
    return sorted(heads | rows)


async def verify(db: Database, tenant: str, *, chain: AuditChain | None = None) -> VerifyResult:
    """Verify one tenant's chain: every row, every link, and the head. Streams in chunks."""
    verifier = ChainVerifier(tenant, chain or AuditChain())
    t = AuditEventRow
    after = -1
    while True:
        stmt = (
            select(t).where(t.tenant == tenant, t.seq > after).order_by(t.seq).limit(_VERIFY_CHUNK)
        )
        async with db.session() as session:
            rows = list((await session.execute(stmt)).scalars())
        if not rows:
            break
        verifier.feed(link_from_row(r) for r in rows)
        after = rows[-1].seq
    async with db.session() as session:
        head_row = await session.get(AuditChainHeadRow, tenant)
    head = (
        ChainHead(head_row.tenant, head_row.last_seq, head_row.last_hash)
        if head_row is not None
        else None
    )
    return verifier.finish(head)


async def verify_all(db: Database, *, chain: AuditChain | None = None) -> dict[str, VerifyResult]:
    """Verify every tenant's chain."""
    return {tenant: await verify(db, tenant, chain=chain) for tenant in await tenants(db)}

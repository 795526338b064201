"""Audit tables: the events of every tenant's hash chain, and each chain's head.

``audit_events`` holds one row per event. ``(tenant, seq)`` is the primary key, so a chain can
never fork: two writers that computed the same next ``seq`` cannot both commit. ``details`` is
stored as the canonical JSON text the hash was computed over, and the timestamp as integer
microseconds, so a row re-read from SQLite or PostgreSQL hashes to exactly the same bytes.

``audit_chain_heads`` keeps each tenant's last ``seq`` and ``hash``, updated in the same
transaction as the events: it is what lets :func:`connectors.audit.query.verify` notice a
truncated tail (deleted newest rows), which the chain alone cannot.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from connectors.storage.db import Base

__all__ = ["AuditChainHeadRow", "AuditEventRow"]


class AuditEventRow(Base):
    """One audit event, linked into its tenant's hash chain."""

    __tablename__ = "audit_events"

    tenant: Mapped[str] = mapped_column(String(200), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(32), unique=True)
    ts_us: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(200))
    connector: Mapped[str | None] = mapped_column(String(200))
    connector_version: Mapped[str | None] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(200))
    target: Mapped[str | None] = mapped_column(String(512))
    outcome: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[float | None] = mapped_column(Float)
    attempts: Mapped[int | None] = mapped_column(Integer)
    request_id: Mapped[str | None] = mapped_column(String(200))
    credential_name: Mapped[str | None] = mapped_column(String(200))
    credential_version: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_events_tenant_ts", "tenant", "ts_us"),
        Index("ix_audit_events_ts", "ts_us"),
    )


class AuditChainHeadRow(Base):
    """The newest link of one tenant's chain (``seq`` 0 and the genesis hash when empty)."""

    __tablename__ = "audit_chain_heads"

    tenant: Mapped[str] = mapped_column(String(200), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(String(64))

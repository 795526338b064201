"""Rotation policies in SQL: one row per (tenant, credential), with the next scheduled rotation.

The row keeps the policy as JSON plus the times the scheduler needs (``next_due_at``,
``last_rotated_at``), so "what is due?" is one indexed query. Times are Unix seconds from the
injected clock.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Float, Index, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from connectors.clock import Clock, system_clock
from connectors.errors import NotFound
from connectors.rotation.policy import RotationPolicy
from connectors.secrets.credential import check_tenant
from connectors.storage.db import Base, Database

__all__ = ["PolicyStore", "RotationPolicyRow", "StoredPolicy"]


class RotationPolicyRow(Base):
    """One tenant credential's rotation policy and schedule."""

    __tablename__ = "connector_rotation_policies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(200))
    credential: Mapped[str] = mapped_column(String(200))
    policy: Mapped[str] = mapped_column(Text)
    #: When the next scheduled rotation is due (``None``: on demand only).
    next_due_at: Mapped[float | None] = mapped_column(Float)
    last_rotated_at: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        UniqueConstraint("tenant", "credential", name="uq_rotation_policy"),
        Index("ix_rotation_policies_due", "next_due_at"),
    )


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    """A policy with its tenant and schedule."""

    tenant: str
    policy: RotationPolicy
    next_due_at: float | None
    last_rotated_at: float | None


def _stored(row: RotationPolicyRow) -> StoredPolicy:
    return StoredPolicy(
        row.tenant, RotationPolicy.from_json(row.policy), row.next_due_at, row.last_rotated_at
    )


class PolicyStore:
    """Set, read, list and schedule rotation policies."""

    def __init__(self, db: Database, *, clock: Clock = system_clock) -> None:
        self.db = db
        self.clock = clock

    async def set(self, tenant: str, policy: RotationPolicy) -> StoredPolicy:
        """Create or replace the policy of ``policy.credential``; the first run is one interval
        from now (or from the last rotation, when there was one)."""
        check_tenant(tenant)
        now = self.clock.time()
        async with self.db.session() as session:
            row = await session.scalar(
                select(RotationPolicyRow).where(
                    RotationPolicyRow.tenant == tenant,
                    RotationPolicyRow.credential == policy.credential,
                )
            )
            base = now if row is None or row.last_rotated_at is None else row.last_rotated_at
            due = None if policy.interval is None else base + policy.interval
            if row is None:
                row = RotationPolicyRow(
                    tenant=tenant,
                    credential=policy.credential,
                    policy=policy.to_json(),
                    next_due_at=due,
                    last_rotated_at=None,
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
            else:
                row.policy = policy.to_json()
                row.next_due_at = due
                row.updated_at = now
            await session.flush()
            return _stored(row)

    async def get(self, tenant: str, credential: str) -> StoredPolicy:
        """The policy of ``credential``, or :class:`~connectors.errors.NotFound`."""
        async with self.db.session() as session:
            row = await session.scalar(
                select(RotationPolicyRow).where(
                    RotationPolicyRow.tenant == tenant, RotationPolicyRow.credential == credential
                )
            )
            if row is None:
                raise NotFound(
                    f"credential {credential!r} has no rotation policy",
                    tenant=tenant,
                    hint="set one with PolicyStore.set (or pass --kind to the rotate command)",
                )
            return _stored(row)

    async def list(self, tenant: str | None = None) -> list[StoredPolicy]:
        """Every policy (of one tenant, when given), oldest first."""
        stmt = select(RotationPolicyRow).order_by(RotationPolicyRow.id)
        if tenant is not None:
            stmt = stmt.where(RotationPolicyRow.tenant == tenant)
        async with self.db.session() as session:
            return [_stored(r) for r in (await session.execute(stmt)).scalars()]

    async def mark_rotated(self, tenant: str, credential: str) -> None:
        """Record a committed rotation and schedule the next one an interval later."""
        now = self.clock.time()
        async with self.db.session() as session:
            row = await session.scalar(
                select(RotationPolicyRow).where(
                    RotationPolicyRow.tenant == tenant, RotationPolicyRow.credential == credential
                )
            )
            if row is None:
                return
            interval = RotationPolicy.from_json(row.policy).interval
            row.last_rotated_at = now
            row.next_due_at = None if interval is None else now + interval
            row.updated_at = now

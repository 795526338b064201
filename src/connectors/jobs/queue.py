"""Enqueueing and leasing jobs in the SQL store (SQLite and PostgreSQL).

:meth:`JobQueue.enqueue` inserts a row, inside the caller's ``AsyncSession`` when one is given so
the job commits or rolls back with the caller's own data (a transactional outbox). A
``dedupe_key`` makes enqueueing idempotent: a second job with the same key is not inserted and the
existing job's id is returned.

:meth:`JobQueue.lease` claims due jobs atomically in one statement::

    UPDATE connector_jobs SET status='running', lease_owner=:me, lease_expires_at=:now+lease,
           attempts=attempts+1
     WHERE id IN (SELECT id FROM connector_jobs
                   WHERE (status='queued' AND run_at <= :now)
                      OR (status='running' AND lease_expires_at < :now)
                   ORDER BY run_at LIMIT :n [FOR UPDATE SKIP LOCKED])
    RETURNING ...

On SQLite the statement takes the write lock before it reads, so two workers can never claim the
same row; on PostgreSQL ``FOR UPDATE SKIP LOCKED`` makes concurrent workers skip each other's rows.
Every later change to a leased row is conditional on ``lease_owner``: a worker whose lease expired
(and whose job another worker took over) cannot overwrite the new owner's result.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import (
    Float,
    Integer,
    Select,
    String,
    Table,
    Update,
    and_,
    bindparam,
    func,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.clock import Clock, system_clock
from connectors.errors import InvalidRequest
from connectors.jobs.tables import JobRow, JobStatus
from connectors.storage.db import Database

__all__ = ["JobInfo", "JobQueue", "LeasedJob"]

_MAX_ERROR = 2000
_jobs = cast("Table", JobRow.__table__)


@dataclass(frozen=True, slots=True)
class LeasedJob:
    """A job this worker holds the lease on."""

    id: int
    name: str
    args: Mapping[str, object]
    attempts: int
    tenant: str | None


@dataclass(frozen=True, slots=True)
class JobInfo:
    """A job row, for inspection."""

    id: int
    name: str
    args: Mapping[str, object]
    status: str
    attempts: int
    run_at: float
    last_error: str | None
    lease_owner: str | None
    tenant: str | None


def _build_lease(is_sqlite: bool) -> Update:
    """The lease statement (built once per dialect: building it per call cost more than running
    it). It picks the ``b_limit`` earliest (by ``run_at``) due or abandoned jobs.

    On SQLite each half is its own index range scan that stops after ``b_limit`` rows (an OR of
    the two sorted every due row on each lease: a long queue made leasing slow); PostgreSQL locks
    the picked rows, skipping those other workers hold.
    """
    c = _jobs.c
    now = bindparam("b_now", type_=Float)
    limit = bindparam("b_limit", type_=Integer)
    queued = and_(c.status == JobStatus.QUEUED.value, c.run_at <= now)
    abandoned = and_(c.status == JobStatus.RUNNING.value, c.lease_expires_at < now)
    pick: Select[tuple[int]]
    if is_sqlite:
        halves = [
            select(c.id, c.run_at).where(cond).order_by(c.run_at, c.id).limit(limit).subquery()
            for cond in (queued, abandoned)
        ]
        both = union_all(*(select(h.c.id, h.c.run_at) for h in halves)).subquery()
        pick = select(both.c.id).order_by(both.c.run_at, both.c.id).limit(limit)
    else:
        pick = (
            select(c.id)
            .where(or_(queued, abandoned))
            .order_by(c.run_at, c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    return (
        update(_jobs)
        .where(c.id.in_(pick.scalar_subquery()))
        .values(
            status=JobStatus.RUNNING.value,
            lease_owner=bindparam("b_owner", type_=String),
            lease_expires_at=bindparam("b_until", type_=Float),
            attempts=c.attempts + 1,
            updated_at=now,
        )
        .returning(c.id, c.name, c.args, c.attempts, c.tenant)
    )


_LEASE: dict[bool, Update] = {}

_COMPLETE = (
    update(_jobs)
    .where(
        _jobs.c.id.in_(bindparam("b_ids", expanding=True)),
        _jobs.c.lease_owner == bindparam("b_owner", type_=String),
        _jobs.c.status == JobStatus.RUNNING.value,
    )
    .values(
        status=JobStatus.DONE.value,
        lease_owner=None,
        lease_expires_at=None,
        updated_at=bindparam("b_now", type_=Float),
    )
)


def _lease_statement(is_sqlite: bool) -> Update:
    found = _LEASE.get(is_sqlite)
    if found is None:
        found = _LEASE[is_sqlite] = _build_lease(is_sqlite)
    return found


class JobQueue:
    """The job table's operations. Cheap to create; holds no connection."""

    def __init__(self, db: Database, *, clock: Clock = system_clock) -> None:
        self.db = db
        self.clock = clock

    async def enqueue(
        self,
        name: str,
        args: Mapping[str, object],
        *,
        run_at: float | None = None,
        session: AsyncSession | None = None,
        dedupe_key: str | None = None,
        tenant: str | None = None,
    ) -> int:
        """Queue job ``name`` with JSON ``args``; returns its id (the existing one on a dedupe).

        With ``session`` the row is written in the caller's transaction (committed or rolled back
        with it); without, in a transaction of its own. ``run_at`` is Unix seconds (default: now).
        """
        try:
            text = json.dumps(dict(args), separators=(",", ":"), sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidRequest(f"job {name!r}: arguments must be JSON: {exc}") from exc
        now = self.clock.time()
        values: dict[str, object] = {
            "name": name,
            "args": text,
            "tenant": tenant,
            "run_at": now if run_at is None else run_at,
            "attempts": 0,
            "status": JobStatus.QUEUED.value,
            "dedupe_key": dedupe_key,
            "created_at": now,
            "updated_at": now,
        }
        if session is not None:
            return await self._insert(session, values, dedupe_key)
        async with self.db.session() as own:
            return await self._insert(own, values, dedupe_key)

    async def _insert(
        self, session: AsyncSession, values: dict[str, object], dedupe_key: str | None
    ) -> int:
        if dedupe_key is None:
            row = JobRow(**values)
            session.add(row)
            await session.flush()
            return row.id
        dialect = self.db.engine.dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = (
            insert(JobRow)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
            .returning(JobRow.id)
        )
        inserted = (await session.execute(stmt)).scalar_one_or_none()
        if inserted is not None:
            return int(inserted)
        existing = await session.execute(select(JobRow.id).where(JobRow.dedupe_key == dedupe_key))
        return int(existing.scalar_one())

    async def lease(self, owner: str, *, limit: int, lease: float) -> list[LeasedJob]:
        """Claim up to ``limit`` due jobs (queued and due, or abandoned) for ``owner``."""
        if limit < 1:
            return []
        now = self.clock.time()
        params = {"b_now": now, "b_limit": limit, "b_owner": owner, "b_until": now + lease}
        async with self.db.engine.begin() as conn:
            rows = (await conn.execute(_lease_statement(self.db.is_sqlite), params)).all()
        leased = [
            LeasedJob(id=r[0], name=r[1], args=json.loads(r[2]), attempts=r[3], tenant=r[4])
            for r in rows
        ]
        leased.sort(key=lambda j: j.id)
        return leased

    async def extend(self, owner: str, ids: Sequence[int], *, lease: float) -> int:
        """Extend ``owner``'s leases to ``now + lease``; returns how many it still held."""
        if not ids:
            return 0
        now = self.clock.time()
        stmt = (
            update(JobRow)
            .where(JobRow.id.in_(list(ids)), JobRow.lease_owner == owner)
            .where(JobRow.status == JobStatus.RUNNING.value)
            .values(lease_expires_at=now + lease, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        async with self.db.session() as session:
            result = await session.execute(stmt)
        return int(getattr(result, "rowcount", 0) or 0)

    async def complete(self, owner: str, ids: Sequence[int]) -> None:
        """Mark ``owner``'s jobs done (one statement for a batch)."""
        if not ids:
            return
        params = {"b_ids": list(ids), "b_owner": owner, "b_now": self.clock.time()}
        async with self.db.engine.begin() as conn:
            await conn.execute(_COMPLETE, params)

    async def reschedule(self, owner: str, job_id: int, *, delay: float, error: str) -> None:
        """Queue ``owner``'s job again after ``delay`` seconds, keeping ``error``."""
        await self._finish(
            owner,
            [job_id],
            status=JobStatus.QUEUED,
            error=error,
            run_at=self.clock.time() + delay,
        )

    async def release(self, owner: str, ids: Sequence[int]) -> None:
        """Give leases back without a verdict (shutdown): the jobs are due again now."""
        if ids:
            await self._finish(
                owner,
                list(ids),
                status=JobStatus.QUEUED,
                error="released at shutdown",
                run_at=self.clock.time(),
            )

    async def unlease(self, owner: str, ids: Sequence[int]) -> None:
        """Give back leases of jobs that never started (a runner's prefetched jobs at shutdown).

        Unlike :meth:`release` the lease did not cost the job an attempt: ``attempts`` goes back
        down, ``run_at`` and ``last_error`` stay, and the jobs are due again at once.
        """
        if not ids:
            return
        stmt = (
            update(JobRow)
            .where(JobRow.id.in_(list(ids)), JobRow.lease_owner == owner)
            .where(JobRow.status == JobStatus.RUNNING.value)
            .values(
                status=JobStatus.QUEUED.value,
                lease_owner=None,
                lease_expires_at=None,
                attempts=func.max(JobRow.attempts - 1, 0)
                if self.db.is_sqlite
                else func.greatest(JobRow.attempts - 1, 0),
                updated_at=self.clock.time(),
            )
            .execution_options(synchronize_session=False)
        )
        async with self.db.session() as session:
            await session.execute(stmt)

    async def fail(self, owner: str, job_id: int, *, dead: bool, error: str) -> None:
        """End ``owner``'s job as ``dead`` (retries exhausted) or ``failed`` (never retryable)."""
        status = JobStatus.DEAD if dead else JobStatus.FAILED
        await self._finish(owner, [job_id], status=status, error=error, run_at=None)

    async def _finish(
        self,
        owner: str,
        ids: list[int],
        *,
        status: JobStatus,
        error: str | None,
        run_at: float | None,
    ) -> None:
        now = self.clock.time()
        values: dict[str, object] = {
            "status": status.value,
            "lease_owner": None,
            "lease_expires_at": None,
            "updated_at": now,
        }
        if error is not None:
            values["last_error"] = error[:_MAX_ERROR]
        if run_at is not None:
            values["run_at"] = run_at
        stmt = (
            update(_jobs)
            .where(_jobs.c.id.in_(ids), _jobs.c.lease_owner == owner)
            .where(_jobs.c.status == JobStatus.RUNNING.value)
            .values(**values)
        )
        async with self.db.engine.begin() as conn:
            await conn.execute(stmt)

    async def next_due(self) -> float | None:
        """The earliest time a job becomes runnable (queued ``run_at`` or an expiring lease)."""
        async with self.db.session() as session:
            queued = await session.execute(
                select(func.min(JobRow.run_at)).where(JobRow.status == JobStatus.QUEUED.value)
            )
            leased = await session.execute(
                select(func.min(JobRow.lease_expires_at)).where(
                    JobRow.status == JobStatus.RUNNING.value
                )
            )
            times = [t for t in (queued.scalar(), leased.scalar()) if t is not None]
        return min(times) if times else None

    async def get(self, job_id: int) -> JobInfo | None:
        async with self.db.session() as session:
            row = await session.get(JobRow, job_id)
            return None if row is None else _info(row)

    async def list(self, *, name: str | None = None, status: str | None = None) -> list[JobInfo]:
        """Jobs, oldest first, optionally filtered by name and status."""
        stmt = select(JobRow).order_by(JobRow.id)
        if name is not None:
            stmt = stmt.where(JobRow.name == name)
        if status is not None:
            stmt = stmt.where(JobRow.status == status)
        async with self.db.session() as session:
            return [_info(r) for r in (await session.execute(stmt)).scalars()]

    async def counts(self) -> dict[str, int]:
        """How many jobs are in each status."""
        stmt = select(JobRow.status, func.count()).group_by(JobRow.status)
        async with self.db.session() as session:
            return {str(s): int(n) for s, n in (await session.execute(stmt)).all()}


def _info(row: JobRow) -> JobInfo:
    return JobInfo(
        id=row.id,
        name=row.name,
        args=json.loads(row.args),
        status=row.status,
        attempts=row.attempts,
        run_at=row.run_at,
        last_error=row.last_error,
        lease_owner=row.lease_owner,
        tenant=row.tenant,
    )

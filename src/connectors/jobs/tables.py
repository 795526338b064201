"""The job table of the local runner: one row per job, leased by workers with a visibility timeout.

``status`` moves ``queued → running → done``; a failed run goes back to ``queued`` with a later
``run_at`` (per the job's retry schedule), to ``failed`` (the job said it can never succeed) or to
``dead`` (its attempts are exhausted). A ``running`` row whose ``lease_expires_at`` has passed
belongs to a worker that died: any worker may lease it again. Times are Unix seconds (floats) from
the runner's :class:`~connectors.clock.Clock`, so tests drive them with a fake clock.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import BigInteger, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from connectors.storage.db import Base

__all__ = ["JobRow", "JobStatus"]


class JobStatus(StrEnum):
    """The states of a job row."""

    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    DEAD = "dead"


class JobRow(Base):
    """One background job."""

    __tablename__ = "connector_jobs"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    name: Mapped[str] = mapped_column(String(200))
    #: The arguments as JSON text (a JSON object).
    args: Mapped[str] = mapped_column(Text)
    tenant: Mapped[str | None] = mapped_column(String(200))
    run_at: Mapped[float] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[float | None] = mapped_column(Float)
    status: Mapped[str] = mapped_column(String(16), default=JobStatus.QUEUED.value)
    last_error: Mapped[str | None] = mapped_column(Text)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        Index("ix_connector_jobs_due", "status", "run_at"),
        Index("ix_connector_jobs_lease", "status", "lease_expires_at"),
    )

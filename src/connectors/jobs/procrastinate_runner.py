"""The distributed job runner: the same job functions, run by procrastinate workers on PostgreSQL.

::

    connector_jobs (the transactional outbox: webhook sends, schedules, revocations)
        │  relay: lease due rows (FOR UPDATE SKIP LOCKED) › defer each to procrastinate › done
        ▼
    procrastinate_jobs ──▶ workers (any number of processes or machines), LISTEN/NOTIFY
        │  task "webhook.deliver" etc. = a wrapper calling the registered job function
        ▼
    RetryJob(delay) › retry at now+delay;  JobFailed › failed;  other errors › the JobSpec's
    retry delays, then failed

Callers keep enqueueing with :class:`~connectors.jobs.JobQueue` inside their own transaction (so a
webhook commits with the caller's data); every worker also runs the relay, so a row reaches
procrastinate within one relay poll. A crash between deferring and marking the row done defers it
again when its lease expires: at least once, and the job functions are idempotent.

A worker killed mid-job (``kill -9``) stops its heartbeat; every worker's reaper looks for jobs
held by workers silent for ``stalled_after`` seconds and puts them back in the queue, where a live
worker takes them (procrastinate 3 detects stalled workers but leaves the retry to the
application).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import socket
import uuid
from collections.abc import Mapping
from typing import Any, Final, cast

import procrastinate
from procrastinate.retry import BaseRetryStrategy, RetryDecision
from sqlalchemy.engine import make_url

from connectors.clock import Clock, system_clock
from connectors.errors import ConfigurationError
from connectors.jobs.queue import JobQueue
from connectors.jobs.registry import JobContext, JobFailed, JobRegistry, JobSpec, RetryJob
from connectors.observability.logging import get_logger
from connectors.storage.db import Database

__all__ = ["DEFAULT_QUEUE", "ProcrastinateJobRunner", "conninfo_from_url"]

#: The procrastinate queue the framework's jobs use.
DEFAULT_QUEUE: Final = "connectors"

_log = get_logger("connectors.jobs.procrastinate")


def conninfo_from_url(url: str) -> str:
    """A libpq connection string from a SQLAlchemy PostgreSQL URL (any driver suffix)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        raise ConfigurationError(
            f"procrastinate needs a PostgreSQL database, not {parsed.drivername!r}",
            hint="set CONNECTOR_DATABASE_URL=postgresql+asyncpg://user:password@host/db",
        )
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


class _Retry(BaseRetryStrategy):
    """Maps the job function's ending to procrastinate's retry decision."""

    def __init__(self, spec: JobSpec) -> None:
        self.spec = spec

    def get_retry_decision(
        self, *, exception: BaseException, job: procrastinate.jobs.Job
    ) -> RetryDecision | None:
        now = datetime.datetime.now(datetime.UTC)
        if isinstance(exception, RetryJob):
            return RetryDecision(retry_at=now + datetime.timedelta(seconds=exception.delay))
        if isinstance(exception, JobFailed):
            return None
        delay = self.spec.delay_after(job.attempts + 1)
        if delay is None:
            return None
        return RetryDecision(retry_at=now + datetime.timedelta(seconds=delay))


class ProcrastinateJobRunner:
    """Runs the registered job functions as procrastinate tasks; relays the job table into it.

    ``concurrency``: jobs at once in this process. ``heartbeat``: seconds between this worker's
    heartbeats; ``stalled_after``: seconds of silence after which another worker's jobs are taken
    over. ``relay_poll``/``relay_lease``: how often the job table is relayed and how long a
    relayed row stays claimed.
    """

    def __init__(
        self,
        db: Database,
        registry: JobRegistry,
        *,
        conninfo: str | None = None,
        services: Mapping[str, object] | None = None,
        concurrency: int = 4,
        heartbeat: float = 10.0,
        stalled_after: float = 30.0,
        relay_poll: float = 0.5,
        relay_lease: float = 30.0,
        poll: float = 1.0,
        grace: float = 10.0,
        queue: str = DEFAULT_QUEUE,
        clock: Clock = system_clock,
        worker_id: str | None = None,
    ) -> None:
        if concurrency < 1 or heartbeat <= 0 or stalled_after <= heartbeat:
            raise ConfigurationError(
                "the procrastinate runner needs concurrency ≥ 1 and stalled_after > heartbeat > 0"
            )
        self.db = db
        self.registry = registry
        self.conninfo = conninfo or conninfo_from_url(db.url)
        self.services: Mapping[str, object] = dict(services or {})
        self.concurrency = concurrency
        self.heartbeat = heartbeat
        self.stalled_after = stalled_after
        self.relay_poll = relay_poll
        self.relay_lease = relay_lease
        self.poll = poll
        self.grace = grace
        self.queue_name = queue
        self.clock = clock
        self.worker = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.queue = JobQueue(db, clock=clock)
        self.app = procrastinate.App(
            connector=procrastinate.PsycopgConnector(conninfo=self.conninfo)
        )
        for name in registry:
            spec = registry.get(name)
            assert spec is not None
            self._register(spec)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        #: Rows relayed and stalled jobs requeued by this runner (tests, metrics).
        self.relayed = 0
        self.requeued = 0

    def _register(self, spec: JobSpec) -> None:
        runner = self

        async def run(
            context: procrastinate.JobContext,
            args: dict[str, object],
            tenant: str | None = None,
        ) -> None:
            job = context.job
            ctx = JobContext(
                db=runner.db,
                clock=runner.clock,
                job_id=job.id or 0,
                name=spec.name,
                attempt=job.attempts + 1,
                tenant=tenant,
                worker=runner.worker,
                services=runner.services,
            )
            await spec.fn(ctx, args)

        self.app.task(name=spec.name, pass_context=True, queue=self.queue_name, retry=_Retry(spec))(
            run
        )

    # --- schema ---------------------------------------------------------------------------------

    async def ensure_schema(self) -> bool:
        """Create procrastinate's tables if they are missing (the app must be open); whether
        it created them. Concurrent first starts are serialised by an advisory lock."""
        connector = self.app.connector
        await connector.execute_query_async("SELECT pg_advisory_lock(74210001)")
        try:
            row = await connector.execute_query_one_async(
                "SELECT to_regclass('procrastinate_jobs') IS NOT NULL AS present"
            )
            if row["present"]:
                return False
            await self.app.schema_manager.apply_schema_async()
            return True
        finally:
            await connector.execute_query_async("SELECT pg_advisory_unlock(74210001)")

    # --- relay and reaper -----------------------------------------------------------------------

    async def relay_once(self, limit: int = 100) -> int:
        """Move due rows of the job table into procrastinate; how many moved."""
        leased = await self.queue.lease(self.worker, limit=limit, lease=self.relay_lease)
        if not leased:
            return 0
        moved: list[int] = []
        for job in leased:
            if job.name not in self.registry:
                await self.queue.fail(
                    self.worker, job.id, dead=False, error=f"no job function named {job.name!r}"
                )
                continue
            await self.app.configure_task(job.name, queue=self.queue_name).defer_async(
                args=cast(dict[str, Any], dict(job.args)), tenant=job.tenant
            )
            moved.append(job.id)
        await self.queue.complete(self.worker, moved)
        self.relayed += len(moved)
        return len(moved)

    async def requeue_stalled(self) -> int:
        """Put jobs of workers silent for ``stalled_after`` seconds back in the queue."""
        manager = self.app.job_manager
        count = 0
        for job in await manager.get_stalled_jobs(
            queue=self.queue_name, seconds_since_heartbeat=self.stalled_after
        ):
            with contextlib.suppress(Exception):  # another reaper won the race
                await manager.retry_job(job)
                count += 1
                _log.warning("jobs.stalled_requeued", job=job.id, task=job.task_name)
        self.requeued += count
        return count

    async def _relay_loop(self) -> None:
        while True:
            try:
                moved = await self.relay_once()
            except Exception as exc:  # the database hiccuped: try again after a poll
                _log.warning("jobs.relay_failed", error=type(exc).__name__)
                moved = 0
            if not moved:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.relay_poll)

    async def _reaper_loop(self) -> None:
        while True:
            try:
                await self.requeue_stalled()
            except Exception as exc:
                _log.warning("jobs.reaper_failed", error=type(exc).__name__)
            await asyncio.sleep(self.heartbeat)

    # --- running --------------------------------------------------------------------------------

    def _worker_options(self, *, wait: bool, signals: bool) -> dict[str, Any]:
        return {
            "queues": [self.queue_name],
            "name": self.worker,
            "concurrency": self.concurrency,
            "wait": wait,
            "fetch_job_polling_interval": self.poll,
            "shutdown_graceful_timeout": self.grace,
            "install_signal_handlers": signals,
            "update_heartbeat_interval": self.heartbeat,
            "stalled_worker_timeout": self.stalled_after,
        }

    async def run(self, *, install_signal_handlers: bool = False) -> None:
        """Relay, reap and run jobs until cancelled (or SIGINT/SIGTERM when asked to handle
        signals)."""
        async with self.app.open_async():
            await self.ensure_schema()
            helpers = [
                asyncio.create_task(self._relay_loop(), name=f"relay:{self.worker}"),
                asyncio.create_task(self._reaper_loop(), name=f"reaper:{self.worker}"),
            ]
            try:
                await self.app.run_worker_async(
                    **self._worker_options(wait=True, signals=install_signal_handlers)
                )
            finally:
                for task in helpers:
                    task.cancel()
                for task in helpers:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    async def run_pending(self) -> int:
        """Relay everything due, then run queued jobs until none is left; how many relayed."""
        async with self.app.open_async():
            await self.ensure_schema()
            total = 0
            while moved := await self.relay_once():
                total += moved
            await self.app.run_worker_async(**self._worker_options(wait=False, signals=False))
        return total

    def start(self) -> None:
        """Run in the background (``async with runner:`` does this)."""
        if self._task is None:
            self._task = asyncio.create_task(self.run(), name=f"jobs:{self.worker}")

    def notify(self) -> None:
        """Relay now instead of at the next poll (after an in-process enqueue)."""
        self._wake.set()

    async def shutdown(self, grace: float | None = None) -> None:
        """Stop fetching; running jobs get ``grace`` seconds (the worker's graceful timeout)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def __aenter__(self) -> ProcrastinateJobRunner:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.shutdown()

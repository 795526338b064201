"""The local job runner: one process, N concurrent workers, leases with a visibility timeout.

::

    loop:  flush finished ids (one UPDATE)  ›  refill the ready buffer when a batch has room
           (one UPDATE … RETURNING for up to ``concurrency + prefetch`` jobs)  ›  start ready
           jobs in free slots  ›  wait for a finished job, a wake-up or the poll interval
    a job ends: its slot goes straight to the next ready job (no database round trip)
    heartbeat: every lease/3 seconds, extend the leases of running and ready jobs
    shutdown: stop leasing, give unstarted ready jobs back (their attempt is not spent), let
              running jobs finish within ``grace``, cancel the rest and give their leases back

Leasing in batches is what keeps the job table off the hot path: with ``prefetch`` jobs held
ready, one lease statement feeds about ``prefetch / 2`` job starts instead of one. A ready job is
leased like a running one (the heartbeat keeps it), so a crash leaves it to expire and be leased
again like any other.

A job whose worker died (``kill -9``) keeps status ``running`` until its lease expires; then any
runner leases it again, so every job runs at least once. Finished jobs are marked done in batches
(a crash between a job's end and the batch write only repeats that job: still at least once). All
waiting goes through the injected :class:`~connectors.clock.Clock`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections import deque
from collections.abc import Mapping
from types import TracebackType
from typing import Any

from connectors.clock import Clock, system_clock
from connectors.errors import ConfigurationError
from connectors.jobs.queue import JobQueue, LeasedJob
from connectors.jobs.registry import JobContext, JobFailed, JobRegistry, RetryJob
from connectors.storage.db import Database

__all__ = ["LocalJobRunner"]

_log = logging.getLogger("connectors.jobs")


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


class LocalJobRunner:
    """Runs registered jobs from the SQL job table in this process.

    ``concurrency``: jobs run at once. ``prefetch``: jobs leased ahead of a free slot (default:
    ``concurrency``; 0 leases only for free slots). ``lease``: seconds a job stays claimed without
    a heartbeat (the visibility timeout). ``poll``: seconds between looks at the table when idle.
    ``services``: what job functions find in :attr:`JobContext.services`.
    """

    def __init__(
        self,
        db: Database,
        registry: JobRegistry,
        *,
        concurrency: int = 4,
        lease: float = 30.0,
        poll: float = 0.5,
        grace: float = 10.0,
        clock: Clock = system_clock,
        services: Mapping[str, object] | None = None,
        worker_id: str | None = None,
        prefetch: int | None = None,
    ) -> None:
        if concurrency < 1:
            raise ConfigurationError("the job runner needs concurrency ≥ 1")
        if prefetch is not None and prefetch < 0:
            raise ConfigurationError("the job runner needs prefetch ≥ 0")
        if lease <= 0 or poll <= 0 or grace < 0:
            raise ConfigurationError("the job runner needs lease > 0, poll > 0 and grace ≥ 0")
        self.db = db
        self.registry = registry
        self.queue = JobQueue(db, clock=clock)
        self.concurrency = concurrency
        self.prefetch = concurrency if prefetch is None else prefetch
        #: Lease when at least this many places (running + ready) are free: batches, not drips.
        self._refill = max(1, (self.prefetch + 1) // 2)
        self.lease = lease
        self.poll = poll
        self.grace = grace
        self.clock = clock
        self.services: Mapping[str, object] = dict(services or {})
        self.worker = worker_id or _worker_id()
        self._running: dict[int, asyncio.Task[None]] = {}
        self._ready: deque[LeasedJob] = deque()
        self._done: list[int] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        #: Jobs this runner has finished (any verdict), for tests and metrics.
        self.processed = 0

    # --- one-shot ------------------------------------------------------------------------------

    async def run_pending(self) -> int:
        """Run every job that is due now (in batches of ``concurrency``); how many ran."""
        total = 0
        while True:
            jobs = await self.queue.lease(self.worker, limit=self.concurrency, lease=self.lease)
            if not jobs:
                return total
            await asyncio.gather(*(self._execute(job) for job in jobs))
            await self._flush_done()
            total += len(jobs)

    # --- long-running ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start leasing in the background (``async with runner:`` does this)."""
        if self._loop_task is None:
            self._stopping = False
            self._loop_task = asyncio.create_task(self.run(), name=f"jobs:{self.worker}")

    def notify(self) -> None:
        """Wake the loop now (after an in-process enqueue) instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Lease and run jobs until :meth:`shutdown` (or :meth:`stop`) is called."""
        self._heartbeat = asyncio.create_task(self._beat())
        capacity = self.concurrency + self.prefetch
        try:
            while not self._stopping:
                await self._flush_done()
                room = capacity - len(self._running) - len(self._ready)
                drained = False
                if room >= self._refill:
                    try:
                        jobs = await self.queue.lease(self.worker, limit=room, lease=self.lease)
                    except Exception as exc:  # the database hiccuped: try again after a poll
                        _log.warning("jobs.lease_failed", extra={"error": _describe(exc)})
                        jobs = []
                    self._ready.extend(jobs)  # (stopped meanwhile: given back at shutdown)
                    drained = len(jobs) < room
                self._start_ready()
                if drained and not self._ready:
                    await self._wait(self.poll)  # nothing due: look again after a poll
                else:
                    await self._wait(None)  # a job ending (or a notify) wakes the loop
        finally:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat

    def stop(self) -> None:
        """Stop leasing new jobs (running ones continue; :meth:`shutdown` waits for them)."""
        self._stopping = True
        self._wake.set()

    async def shutdown(self, grace: float | None = None) -> None:
        """Stop leasing; wait up to ``grace`` s for running jobs; cancel and release the rest."""
        self.stop()
        grace = self.grace if grace is None else grace
        if self._loop_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        if self._ready:
            unstarted, self._ready = [job.id for job in self._ready], deque()
            try:
                await self.queue.unlease(self.worker, unstarted)
            except Exception as exc:  # the leases expire and another runner takes the jobs
                _log.warning("jobs.release_failed", extra={"error": _describe(exc)})
        pending = set(self._running.values())
        if pending:
            waiter = asyncio.ensure_future(asyncio.wait(pending))
            sleeper = asyncio.ensure_future(self.clock.sleep(grace))
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
            sleeper.cancel()
            waiter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sleeper
            with contextlib.suppress(asyncio.CancelledError):
                await waiter
        unfinished = [job_id for job_id, task in self._running.items() if not task.done()]
        for job_id in unfinished:
            self._running[job_id].cancel()
        for job_id in unfinished:
            with contextlib.suppress(asyncio.CancelledError):
                await self._running[job_id]
        await self._flush_done()
        if unfinished:
            await self.queue.release(self.worker, unfinished)

    async def __aenter__(self) -> LocalJobRunner:
        self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.shutdown()

    # --- internals -----------------------------------------------------------------------------

    async def _wait(self, timeout: float | None) -> None:  # noqa: ASYNC109 - clock-driven
        if self._wake.is_set():
            self._wake.clear()
            return
        waiter = asyncio.ensure_future(self._wake.wait())
        tasks: set[asyncio.Future[Any]] = {waiter}
        sleeper = None
        if timeout is not None:
            sleeper = asyncio.ensure_future(self.clock.sleep(timeout))
            tasks.add(sleeper)
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._wake.clear()

    async def _beat(self) -> None:
        interval = self.lease / 3
        while True:
            await self.clock.sleep(interval)
            ids = [*self._running, *(job.id for job in self._ready)]
            if ids:
                try:
                    await self.queue.extend(self.worker, ids, lease=self.lease)
                except Exception as exc:
                    _log.warning("jobs.extend_failed", extra={"error": _describe(exc)})

    def _start_ready(self) -> None:
        """Give free slots to ready jobs (not while stopping: those go back at shutdown)."""
        while self._ready and len(self._running) < self.concurrency and not self._stopping:
            job = self._ready.popleft()
            self._running[job.id] = asyncio.create_task(self._run_one(job))

    async def _run_one(self, job: LeasedJob) -> None:
        try:
            await self._execute(job)
        finally:
            self._running.pop(job.id, None)
            self._start_ready()
            self._wake.set()

    async def _flush_done(self) -> None:
        if not self._done:
            return
        ids, self._done = self._done, []
        try:
            await self.queue.complete(self.worker, ids)
        except Exception as exc:  # leases expire and the jobs run again: at least once
            _log.warning("jobs.complete_failed", extra={"error": _describe(exc)})

    async def _execute(self, job: LeasedJob) -> None:
        spec = self.registry.get(job.name)
        queue = self.queue
        try:
            if spec is None:
                await queue.fail(
                    self.worker, job.id, dead=False, error=f"no job function named {job.name!r}"
                )
                return
            ctx = JobContext(
                db=self.db,
                clock=self.clock,
                job_id=job.id,
                name=job.name,
                attempt=job.attempts,
                tenant=job.tenant,
                worker=self.worker,
                services=self.services,
            )
            try:
                await spec.fn(ctx, job.args)
            except RetryJob as signal:
                await queue.reschedule(
                    self.worker, job.id, delay=signal.delay, error=signal.reason or str(signal)
                )
            except JobFailed as exc:
                await queue.fail(self.worker, job.id, dead=False, error=_describe(exc))
            except Exception as exc:
                delay = spec.delay_after(job.attempts)
                if delay is None:
                    await queue.fail(self.worker, job.id, dead=True, error=_describe(exc))
                else:
                    await queue.reschedule(self.worker, job.id, delay=delay, error=_describe(exc))
            else:
                self._done.append(job.id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # recording the verdict failed: the lease will expire
            _log.warning("jobs.finish_failed", extra={"job": job.id, "error": _describe(exc)})
        finally:
            self.processed += 1

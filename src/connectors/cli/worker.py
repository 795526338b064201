"""``connectors worker``: run background jobs (webhook delivery, token refresh, rotation, probes).

The backend follows the configuration (``CONNECTOR_JOBS_BACKEND``; ``auto`` = procrastinate on a
PostgreSQL ``CONNECTOR_DATABASE_URL``, else the local runner on SQLite), or ``--backend``. The
worker also runs the periodic scheduler (rotation schedules, proactive token refresh) unless
``--no-scheduler``. SIGINT/SIGTERM stop it gracefully.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

import typer

from connectors.cli._common import console, run
from connectors.hub import Hub
from connectors.jobs.runner import LocalJobRunner
from connectors.jobs.select import JobRunner, backend_for, default_registry, job_services

__all__ = ["register", "worker"]


def worker(
    backend: str | None = typer.Option(
        None, help="local or procrastinate (default: from CONNECTOR_JOBS_BACKEND / the database)."
    ),
    concurrency: int = typer.Option(4, min=1, max=1000, help="Jobs run at once."),
    heartbeat: float = typer.Option(10.0, min=0.1, help="Seconds between worker heartbeats."),
    stalled_after: float = typer.Option(
        30.0, min=0.5, help="Seconds of silence after which a worker's jobs are taken over."
    ),
    lease: float = typer.Option(30.0, min=0.5, help="Seconds a claimed job-table row is held."),
    poll: float = typer.Option(0.5, min=0.05, help="Seconds between looks at an idle queue."),
    scheduler: bool = typer.Option(True, help="Also run the periodic scheduler."),
    tick: float = typer.Option(30.0, min=0.1, help="Seconds between scheduler ticks."),
) -> None:
    """Run a job worker until SIGINT/SIGTERM."""
    if backend not in (None, "local", "procrastinate"):
        raise typer.BadParameter("--backend must be local or procrastinate")

    async def main() -> None:
        hub = Hub.default()
        await hub.start(pool_connections=True)
        chosen = backend or backend_for(hub)
        registry, services = default_registry(), job_services(hub)
        runner: JobRunner
        if chosen == "procrastinate":
            from connectors.jobs.procrastinate_runner import ProcrastinateJobRunner

            runner = ProcrastinateJobRunner(
                hub.services.database,
                registry,
                services=services,
                concurrency=concurrency,
                heartbeat=heartbeat,
                stalled_after=stalled_after,
                relay_lease=lease,
                relay_poll=poll,
                poll=poll,
                clock=hub.clock,
            )
        else:
            runner = LocalJobRunner(
                hub.services.database,
                registry,
                services=services,
                concurrency=concurrency,
                lease=lease,
                poll=poll,
                clock=hub.clock,
            )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        ticker: asyncio.Task[None] | None = None
        if scheduler:
            from connectors.jobs.queue import JobQueue
            from connectors.rotation.scheduler import PeriodicScheduler
            from connectors.rotation.store import PolicyStore

            db = hub.services.database
            periodic = PeriodicScheduler(
                JobQueue(db, clock=hub.clock),
                PolicyStore(db, clock=hub.clock),
                hub.services.credentials
                if hub.settings.master_keys or hub.settings.dev_mode
                else None,
                clock=hub.clock,
            )
            ticker = asyncio.create_task(periodic.run(tick))
        console.print(f"worker started ({chosen}, concurrency {concurrency})")
        runner.start()
        try:
            await stop.wait()
        finally:
            if ticker is not None:
                ticker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await ticker
            await runner.shutdown()
            await hub.aclose()
        console.print("worker stopped")

    run(main())


def register(app: typer.Typer) -> None:
    """Add ``connectors worker`` to the root command."""
    app.command("worker")(worker)

"""Background jobs: a SQL job table, job functions by name, and the local runner.

- :mod:`~connectors.jobs.tables` — the ``connector_jobs`` table;
- :mod:`~connectors.jobs.registry` — :class:`JobRegistry`, :class:`JobContext`, retry signals;
- :mod:`~connectors.jobs.queue` — :class:`JobQueue`: enqueue (in the caller's transaction),
  atomic leasing, finishing;
- :mod:`~connectors.jobs.runner` — :class:`LocalJobRunner` (one process, N workers).

Job functions are plain async functions registered by name, so a distributed runner
(procrastinate) can call the same functions later.
"""

from connectors.jobs.queue import JobInfo, JobQueue, LeasedJob
from connectors.jobs.registry import (
    DEFAULT_RETRY_DELAYS,
    JobArgs,
    JobContext,
    JobFailed,
    JobFunction,
    JobRegistry,
    JobSpec,
    RetryJob,
)
from connectors.jobs.runner import LocalJobRunner
from connectors.jobs.tables import JobRow, JobStatus

__all__ = [
    "DEFAULT_RETRY_DELAYS",
    "JobArgs",
    "JobContext",
    "JobFailed",
    "JobFunction",
    "JobInfo",
    "JobQueue",
    "JobRegistry",
    "JobRow",
    "JobSpec",
    "JobStatus",
    "LeasedJob",
    "LocalJobRunner",
    "RetryJob",
]

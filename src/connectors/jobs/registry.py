"""Job functions by name, and what a job function receives.

A job function is a plain ``async def fn(ctx: JobContext, args: JobArgs) -> None`` registered under
a stable name, so any runner (the local one here, procrastinate later) can call it from a row that
holds only the name and JSON arguments. The function tells the runner what happened by how it
ends:

* it returns: the job is done;
* it raises :class:`RetryJob`: the job runs again after ``delay`` seconds (its own schedule, e.g.
  a webhook's retry schedule or a ``Retry-After``);
* it raises :class:`JobFailed`: the job can never succeed; it is marked ``failed``;
* it raises anything else: the runner retries it per the :class:`JobSpec`'s ``retry_delays`` and
  marks it ``dead`` when they are exhausted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeAlias, TypeVar

from connectors.clock import Clock
from connectors.errors import ConfigurationError
from connectors.storage.db import Database

__all__ = [
    "DEFAULT_RETRY_DELAYS",
    "JobArgs",
    "JobContext",
    "JobFailed",
    "JobFunction",
    "JobRegistry",
    "JobSpec",
    "RetryJob",
]

JobArgs: TypeAlias = Mapping[str, object]
JobFunction: TypeAlias = Callable[["JobContext", JobArgs], Awaitable[None]]

#: Delays (seconds) before the 2nd, 3rd... run of a job that raised an unexpected error.
DEFAULT_RETRY_DELAYS: Final[tuple[float, ...]] = (5.0, 30.0, 120.0, 600.0)

S = TypeVar("S")


class RetryJob(Exception):
    """Run the job again after ``delay`` seconds; ``reason`` is kept as the job's last error."""

    def __init__(self, delay: float, reason: str = "") -> None:
        super().__init__(reason or f"retry in {delay:g}s")
        self.delay = max(0.0, float(delay))
        self.reason = reason


class JobFailed(Exception):
    """The job can never succeed (bad arguments, a permanent refusal): do not retry it."""


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a running job gets: the database, the clock, shared services and its own identity."""

    db: Database
    clock: Clock
    job_id: int
    name: str
    #: 1 for the first run; a run after a crashed worker counts too.
    attempt: int
    tenant: str | None
    worker: str
    services: Mapping[str, object] = field(default_factory=dict)

    def service(self, key: str, kind: type[S]) -> S:
        """The service registered under ``key``, checked to be a ``kind``."""
        found = self.services.get(key)
        if not isinstance(found, kind):
            raise ConfigurationError(
                f"job {self.name!r} needs the service {key!r} ({kind.__name__}), "
                "but the runner was not given one",
                hint=f"pass services={{{key!r}: ...}} to the job runner",
            )
        return found


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A registered job function and its default retry delays."""

    name: str
    fn: JobFunction
    retry_delays: tuple[float, ...] = DEFAULT_RETRY_DELAYS

    def delay_after(self, attempt: int) -> float | None:
        """Delay before the next run after run ``attempt`` failed, ``None`` when exhausted."""
        if 1 <= attempt <= len(self.retry_delays):
            return self.retry_delays[attempt - 1]
        return None


class JobRegistry:
    """Job functions by name."""

    def __init__(self) -> None:
        self._specs: dict[str, JobSpec] = {}

    def register(
        self, name: str, fn: JobFunction, *, retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS
    ) -> JobSpec:
        """Register ``fn`` under ``name`` (a second registration of a name is an error)."""
        if not name:
            raise ConfigurationError("a job needs a non-empty name")
        if name in self._specs and self._specs[name].fn is not fn:
            raise ConfigurationError(f"a job named {name!r} is already registered")
        if any(d < 0 for d in retry_delays):
            raise ConfigurationError(f"job {name!r}: retry delays must be ≥ 0")
        spec = JobSpec(name, fn, tuple(float(d) for d in retry_delays))
        self._specs[name] = spec
        return spec

    def job(
        self, name: str, *, retry_delays: Sequence[float] = DEFAULT_RETRY_DELAYS
    ) -> Callable[[JobFunction], JobFunction]:
        """Decorator form of :meth:`register`."""

        def decorate(fn: JobFunction) -> JobFunction:
            self.register(name, fn, retry_delays=retry_delays)
            return fn

        return decorate

    def get(self, name: str) -> JobSpec | None:
        return self._specs.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._specs))

"""The health model: statuses, checks, their aggregate, and a tracker of recent calls.

:class:`HealthStatus` orders ``healthy < unknown < degraded < unhealthy``: an aggregate is the
worst of its checks, and "no evidence" is worse than "fine" but better than any evidence of
trouble. :class:`Health` is what the API and dashboard show; everything has ``to_dict()``.

:class:`HealthTracker` is fed every operation outcome of one connector for one tenant and keeps
the last five minutes in a ring of 30 ten-second buckets. Each bucket holds a call count, an
error count and a sparse latency histogram with logarithmic bins (four per doubling, so a
percentile read from it is within about 9 % of the true value). Memory is bounded by the ring
(30 buckets of at most ~100 bins each) whatever the call rate; recording costs a few dict
operations. The same buckets give the error-rate and p95 sparklines.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final, TypeAlias

from connectors.clock import Clock, system_clock

__all__ = [
    "BucketStats",
    "Health",
    "HealthCheck",
    "HealthSnapshot",
    "HealthStatus",
    "HealthTracker",
    "JSONValue",
]

JSONValue: TypeAlias = (
    str | int | float | bool | Sequence["JSONValue"] | Mapping[str, "JSONValue"] | None
)


class HealthStatus(StrEnum):
    """How a connector (or one aspect of it) is doing."""

    HEALTHY = "healthy"
    UNKNOWN = "unknown"
    DEGRADED = "degraded"
    UNHEALTHY = "unhealthy"

    @property
    def severity(self) -> int:
        """0 for healthy up to 3 for unhealthy: the order used by :meth:`worst`."""
        return _SEVERITY[self]

    @classmethod
    def worst(cls, statuses: Iterable[HealthStatus]) -> HealthStatus:
        """The most severe of ``statuses`` (``UNKNOWN`` when there are none)."""
        return max(statuses, key=_SEVERITY.__getitem__, default=cls.UNKNOWN)


_SEVERITY: Final[Mapping[HealthStatus, int]] = {
    HealthStatus.HEALTHY: 0,
    HealthStatus.UNKNOWN: 1,
    HealthStatus.DEGRADED: 2,
    HealthStatus.UNHEALTHY: 3,
}


@dataclass(frozen=True, slots=True)
class HealthCheck:
    """One named check: its status, a short human detail, when it was observed, and data."""

    name: str
    status: HealthStatus
    detail: str = ""
    observed_at: float | None = None
    data: Mapping[str, JSONValue] = field(default_factory=dict)

    def to_dict(self) -> dict[str, JSONValue]:
        """JSON-able form."""
        return {
            "name": self.name,
            "status": self.status.value,
            "detail": self.detail,
            "observed_at": self.observed_at,
            "data": dict(self.data),
        }

    @classmethod
    def from_tracker(cls, name: str, snapshot: HealthSnapshot) -> HealthCheck:
        """A check summarising a :class:`HealthTracker` snapshot."""
        return cls(
            name=name,
            status=snapshot.status,
            detail=snapshot.detail,
            observed_at=snapshot.observed_at,
            data=snapshot.to_dict(),
        )


@dataclass(frozen=True, slots=True)
class Health:
    """The aggregate of several checks: its status is the worst of theirs."""

    status: HealthStatus
    checks: tuple[HealthCheck, ...] = ()
    observed_at: float | None = None

    @classmethod
    def from_checks(
        cls, checks: Iterable[HealthCheck], *, observed_at: float | None = None
    ) -> Health:
        """Aggregate ``checks`` (no checks at all: ``UNKNOWN``)."""
        items = tuple(checks)
        when = observed_at
        if when is None:
            times = [c.observed_at for c in items if c.observed_at is not None]
            when = max(times) if times else None
        return cls(HealthStatus.worst(c.status for c in items), items, when)

    def check(self, name: str) -> HealthCheck | None:
        """The check called ``name``, if present."""
        return next((c for c in self.checks if c.name == name), None)

    def to_dict(self) -> dict[str, JSONValue]:
        """JSON-able form."""
        return {
            "status": self.status.value,
            "observed_at": self.observed_at,
            "checks": [c.to_dict() for c in self.checks],
        }


# --- the tracker ----------------------------------------------------------------------------------

_BIN_FLOOR: Final = 0.0005  # seconds: bin 0 holds everything up to half a millisecond
_BINS_PER_DOUBLING: Final = 4
_LOG_STEP: Final = math.log(2) / _BINS_PER_DOUBLING


def _bin(duration: float) -> int:
    if duration <= _BIN_FLOOR:
        return 0
    return int(math.log(duration / _BIN_FLOOR) / _LOG_STEP) + 1


def _bin_value(index: int) -> float:
    # The geometric middle of the bin's range.
    if index == 0:
        return _BIN_FLOOR
    return _BIN_FLOOR * math.exp((index - 0.5) * _LOG_STEP)


def _percentile(bins: Mapping[int, int], total: int, fraction: float) -> float | None:
    if total <= 0:
        return None
    rank = max(1, math.ceil(fraction * total))
    seen = 0
    for index in sorted(bins):
        seen += bins[index]
        if seen >= rank:
            return _bin_value(index)
    return _bin_value(max(bins))  # pragma: no cover - counts always add up to total


class _Bucket:
    __slots__ = ("bins", "calls", "errors", "number")

    def __init__(self) -> None:
        self.number = -1
        self.calls = 0
        self.errors = 0
        self.bins: dict[int, int] = {}

    def reset(self, number: int) -> None:
        self.number = number
        self.calls = 0
        self.errors = 0
        self.bins = {}


@dataclass(frozen=True, slots=True)
class BucketStats:
    """One sparkline point: a time slice's calls, errors, error rate and p95 latency."""

    start: float
    calls: int
    errors: int
    error_rate: float | None
    p95: float | None

    def to_dict(self) -> dict[str, JSONValue]:
        return {
            "start": self.start,
            "calls": self.calls,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "p95": self.p95,
        }


@dataclass(frozen=True, slots=True)
class HealthSnapshot:
    """What a tracker knows at one moment (all figures over the window)."""

    status: HealthStatus
    detail: str
    observed_at: float
    window: float
    calls: int
    errors: int
    error_rate: float | None
    p95: float | None
    last_success_at: float | None
    last_failure_at: float | None
    last_error_code: str | None
    series: tuple[BucketStats, ...]

    def to_dict(self) -> dict[str, JSONValue]:
        """JSON-able form (timestamps are Unix seconds; latencies seconds)."""
        return {
            "status": self.status.value,
            "detail": self.detail,
            "observed_at": self.observed_at,
            "window_seconds": self.window,
            "calls": self.calls,
            "errors": self.errors,
            "error_rate": self.error_rate,
            "p95_seconds": self.p95,
            "last_success_at": self.last_success_at,
            "last_failure_at": self.last_failure_at,
            "last_error_code": self.last_error_code,
            "series": [b.to_dict() for b in self.series],
        }


class HealthTracker:
    """Recent outcomes of one connector for one tenant: error rate, p95, last success/failure.

    Status rules over the window: no calls → unknown; with at least ``min_calls`` calls, an
    error rate of ``unhealthy_error_rate`` or more → unhealthy; any error rate of
    ``degraded_error_rate`` or more (or any error with fewer calls), or a p95 above
    ``slow_p95`` → degraded; otherwise healthy.
    """

    def __init__(
        self,
        clock: Clock = system_clock,
        *,
        window: float = 300.0,
        buckets: int = 30,
        degraded_error_rate: float = 0.05,
        unhealthy_error_rate: float = 0.5,
        min_calls: int = 5,
        slow_p95: float | None = None,
    ) -> None:
        if window <= 0 or buckets < 1:
            raise ValueError("window must be positive and buckets at least 1")
        self.clock = clock
        self.window = window
        self.bucket_seconds = window / buckets
        self.degraded_error_rate = degraded_error_rate
        self.unhealthy_error_rate = unhealthy_error_rate
        self.min_calls = min_calls
        self.slow_p95 = slow_p95
        self._ring = [_Bucket() for _ in range(buckets)]
        self._lock = threading.Lock()
        self.last_success_at: float | None = None
        self.last_failure_at: float | None = None
        self.last_error_code: str | None = None

    def record(self, success: bool, duration: float, error_code: str | None = None) -> None:
        """Add one operation outcome (``duration`` in seconds)."""
        number = int(self.clock.monotonic() // self.bucket_seconds)
        index = _bin(duration)
        wall = self.clock.time()
        with self._lock:
            bucket = self._ring[number % len(self._ring)]
            if bucket.number != number:
                bucket.reset(number)
            bucket.calls += 1
            bucket.bins[index] = bucket.bins.get(index, 0) + 1
            if success:
                self.last_success_at = wall
            else:
                bucket.errors += 1
                self.last_failure_at = wall
                self.last_error_code = error_code

    def snapshot(self) -> HealthSnapshot:
        """The current figures, status and sparkline series (oldest bucket first)."""
        now = self.clock.monotonic()
        wall = self.clock.time()
        current = int(now // self.bucket_seconds)
        size = len(self._ring)
        series: list[BucketStats] = []
        merged: dict[int, int] = {}
        calls = errors = 0
        with self._lock:
            for number in range(current - size + 1, current + 1):
                bucket = self._ring[number % size]
                start = wall - (now - number * self.bucket_seconds)
                if bucket.number != number or bucket.calls == 0:
                    series.append(BucketStats(start, 0, 0, None, None))
                    continue
                calls += bucket.calls
                errors += bucket.errors
                for key, count in bucket.bins.items():
                    merged[key] = merged.get(key, 0) + count
                series.append(
                    BucketStats(
                        start,
                        bucket.calls,
                        bucket.errors,
                        bucket.errors / bucket.calls,
                        _percentile(bucket.bins, bucket.calls, 0.95),
                    )
                )
            last_success, last_failure = self.last_success_at, self.last_failure_at
            last_code = self.last_error_code
        rate = errors / calls if calls else None
        p95 = _percentile(merged, calls, 0.95)
        status, detail = self._judge(calls, errors, rate, p95)
        return HealthSnapshot(
            status=status,
            detail=detail,
            observed_at=wall,
            window=self.window,
            calls=calls,
            errors=errors,
            error_rate=rate,
            p95=p95,
            last_success_at=last_success,
            last_failure_at=last_failure,
            last_error_code=last_code,
            series=tuple(series),
        )

    def status(self) -> HealthStatus:
        """The current status alone."""
        return self.snapshot().status

    def _judge(
        self, calls: int, errors: int, rate: float | None, p95: float | None
    ) -> tuple[HealthStatus, str]:
        minutes = self.window / 60
        if not calls or rate is None:
            return HealthStatus.UNKNOWN, f"no calls in the last {minutes:g} minutes"
        summary = f"{calls} calls, {rate:.1%} errors"
        if p95 is not None:
            summary += f", p95 {p95 * 1000:.0f} ms"
        if calls >= self.min_calls and rate >= self.unhealthy_error_rate:
            return HealthStatus.UNHEALTHY, summary
        if rate >= self.degraded_error_rate or (errors and calls < self.min_calls):
            return HealthStatus.DEGRADED, summary
        if self.slow_p95 is not None and p95 is not None and p95 > self.slow_p95:
            return HealthStatus.DEGRADED, summary + f" (slower than {self.slow_p95 * 1000:.0f} ms)"
        return HealthStatus.HEALTHY, summary

"""API quota: ``Sforce-Limit-Info`` parsing, the org's quota state, and its health check.

Salesforce stamps ``Sforce-Limit-Info: api-usage=10018/100000; api-bursts=1/750`` on REST
responses. :func:`parse_limit_info` reads every ``name=used/max`` pair; :class:`QuotaState` keeps
the latest ``api-usage`` figures for one connector instance, remembers a daily-quota exhaustion
(403 ``REQUEST_LIMIT_EXCEEDED`` "TotalRequests") until the window is expected to roll, and turns
all of it into the ``api_quota`` health check: healthy, degraded under ``degraded_below``
(a fraction, default 10 %) remaining, unhealthy at zero or while exhausted.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from connectors.clock import Clock
from connectors.observability.health import HealthCheck, HealthStatus

__all__ = ["LIMIT_HEADER", "QuotaState", "Usage", "parse_limit_info"]

LIMIT_HEADER: Final = "Sforce-Limit-Info"
_PAIR: Final = re.compile(r"([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(\d+)\s*/\s*(\d+)(?:\(([^)]*)\))?")


@dataclass(frozen=True, slots=True)
class Usage:
    """``used`` of ``max`` calls (``app`` names the connected app of ``per-app-api-usage``)."""

    used: int
    max: int
    app: str | None = None

    @property
    def remaining(self) -> int:
        return max(self.max - self.used, 0)

    @property
    def remaining_fraction(self) -> float:
        """Remaining share in [0, 1] (1 when the maximum is unknown or zero)."""
        return 1.0 if self.max <= 0 else self.remaining / self.max


def parse_limit_info(value: str | None) -> dict[str, Usage]:
    """Every ``name=used/max`` pair of a ``Sforce-Limit-Info`` value; malformed parts skipped."""
    if not value:
        return {}
    out: dict[str, Usage] = {}
    for part in value.split(";"):
        match = _PAIR.fullmatch(part.strip())
        if match is None:
            continue
        name, used, maximum, app = match.groups()
        app_name = app.removeprefix("appName=") if app else None
        out[name.lower()] = Usage(int(used), int(maximum), app_name)
    return out


class QuotaState:
    """The latest ``api-usage`` of one org as seen by one connector instance (thread-safe)."""

    def __init__(self, clock: Clock, *, degraded_below: float = 0.10) -> None:
        if not 0.0 <= degraded_below <= 1.0:
            raise ValueError("degraded_below is a fraction in [0, 1]")
        self._clock = clock
        self.degraded_below = degraded_below
        self._lock = threading.Lock()
        self.usage: Usage | None = None
        self.observed_at: float | None = None
        self._exhausted_until: float | None = None

    def observe(self, headers: Mapping[str, str]) -> Usage | None:
        """Read ``Sforce-Limit-Info`` from response headers; returns the api-usage, if any."""
        usage = parse_limit_info(headers.get(LIMIT_HEADER)).get("api-usage")
        if usage is None:
            return None
        with self._lock:
            self.usage = usage
            self.observed_at = self._clock.time()
            if usage.remaining > 0 and self._exhausted_until is not None:
                # A successful answer with quota left: the window has rolled.
                self._exhausted_until = None
        return usage

    def mark_exhausted(self, retry_after: float) -> None:
        """The daily allocation is spent: refuse calls for ``retry_after`` seconds."""
        with self._lock:
            self._exhausted_until = self._clock.monotonic() + retry_after
            if self.usage is not None:
                self.usage = Usage(self.usage.max, self.usage.max, self.usage.app)
            self.observed_at = self._clock.time()

    def exhausted_for(self) -> float:
        """Seconds until the exhausted quota is expected back (0 when not exhausted)."""
        with self._lock:
            until = self._exhausted_until
        if until is None:
            return 0.0
        left = until - self._clock.monotonic()
        if left <= 0:
            with self._lock:
                self._exhausted_until = None
            return 0.0
        return left

    def remaining_fraction(self) -> float | None:
        """Remaining share of the daily allocation (``None`` before any response)."""
        if self.exhausted_for() > 0:
            return 0.0
        usage = self.usage
        return None if usage is None else usage.remaining_fraction

    def check(self) -> HealthCheck:
        """The ``api_quota`` health check."""
        usage = self.usage
        exhausted = self.exhausted_for()
        data: dict[str, int | float | str | None] = {
            "used": None if usage is None else usage.used,
            "max": None if usage is None else usage.max,
            "remaining": None if usage is None else usage.remaining,
        }
        if exhausted > 0:
            data["retry_after_seconds"] = round(exhausted, 1)
            return HealthCheck(
                "api_quota",
                HealthStatus.UNHEALTHY,
                "daily API request quota exhausted (REQUEST_LIMIT_EXCEEDED)",
                self.observed_at,
                data,
            )
        if usage is None:
            return HealthCheck("api_quota", HealthStatus.UNKNOWN, "no API usage seen yet")
        share = usage.remaining_fraction
        detail = f"{usage.remaining} of {usage.max} daily API requests left ({share:.1%})"
        if usage.remaining == 0:
            status = HealthStatus.UNHEALTHY
        elif share < self.degraded_below:
            status = HealthStatus.DEGRADED
        else:
            status = HealthStatus.HEALTHY
        return HealthCheck("api_quota", status, detail, self.observed_at, data)

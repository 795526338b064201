"""API limits of the emulated org: the daily request allocation and long-running requests.

Every REST call counts against the daily allocation (a composite request counts once) and is
reported in ``Sforce-Limit-Info: api-usage=<used>/<max>``. When the allocation is spent, calls
fail with 403 ``REQUEST_LIMIT_EXCEEDED`` "TotalRequests Limit exceeded.". Requests that have been
running for ``long_request_threshold`` seconds or more are "long-running"; while
``max_concurrent_long_requests`` of them are in flight, new requests fail with 403
``REQUEST_LIMIT_EXCEEDED`` "ConcurrentPerOrgLongTxn Limit exceeded.".
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from connectors.clock import Clock

from .api_errors import ApiError

__all__ = ["ApiLimits"]


@dataclass
class ApiLimits:
    """Counters and checks; times come from the injected clock."""

    clock: Clock
    daily_limit: int
    used: int = 0
    long_threshold: float = 20.0
    max_long: int = 25
    in_flight: dict[int, float] = field(default_factory=dict)
    rejected_quota: int = 0
    rejected_concurrency: int = 0
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def header(self) -> str:
        """The ``Sforce-Limit-Info`` value."""
        return f"api-usage={self.used}/{self.daily_limit}"

    def long_running(self) -> int:
        """Requests in flight for at least the long-request threshold."""
        now = self.clock.monotonic()
        return sum(1 for started in self.in_flight.values() if now - started >= self.long_threshold)

    def admit(self) -> int:
        """Count one call and register it in flight; raises ApiError when a limit is hit."""
        if self.used >= self.daily_limit:
            self.rejected_quota += 1
            raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        if self.long_running() >= self.max_long:
            self.rejected_concurrency += 1
            raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.")
        self.used += 1
        ticket = next(self._ids)
        self.in_flight[ticket] = self.clock.monotonic()
        return ticket

    def release(self, ticket: int) -> None:
        """The request ``ticket`` finished."""
        self.in_flight.pop(ticket, None)

    def resource(self) -> dict[str, dict[str, int]]:
        """The ``GET /limits`` body (a representative subset of Salesforce's keys)."""
        remaining = max(self.daily_limit - self.used, 0)
        return {
            "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
            "DailyApiRequests": {"Max": self.daily_limit, "Remaining": remaining},
            "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
            "DataStorageMB": {"Max": 1024, "Remaining": 1024},
            "FileStorageMB": {"Max": 1024, "Remaining": 1024},
            "HourlyTimeBasedWorkflow": {"Max": 1000, "Remaining": 1000},
            "SingleEmail": {"Max": 5000, "Remaining": 5000},
        }

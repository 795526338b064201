"""Health: status ordering, aggregation, and the windowed tracker of recent calls."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.clock import FakeClock
from connectors.observability.health import (
    Health,
    HealthCheck,
    HealthStatus,
    HealthTracker,
)

H, U, D, X = (
    HealthStatus.HEALTHY,
    HealthStatus.UNKNOWN,
    HealthStatus.DEGRADED,
    HealthStatus.UNHEALTHY,
)


def test_worst_orders_healthy_unknown_degraded_unhealthy() -> None:
    assert [s.severity for s in (H, U, D, X)] == [0, 1, 2, 3]
    assert HealthStatus.worst([H, D, U]) is D
    assert HealthStatus.worst([H, U]) is U
    assert HealthStatus.worst([X, H]) is X
    assert HealthStatus.worst([]) is U


def test_health_from_checks_is_the_worst_and_serialises() -> None:
    checks = [
        HealthCheck("auth", H, observed_at=10.0),
        HealthCheck("recent_calls", D, "12% errors", observed_at=20.0, data={"calls": 8}),
    ]
    health = Health.from_checks(checks)
    assert health.status is D
    assert health.observed_at == 20.0
    assert health.check("auth") is checks[0]
    assert health.check("nope") is None
    as_dict = health.to_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict
    assert as_dict["status"] == "degraded"
    assert as_dict["checks"][1] == {  # type: ignore[index]
        "name": "recent_calls",
        "status": "degraded",
        "detail": "12% errors",
        "observed_at": 20.0,
        "data": {"calls": 8},
    }


def test_health_of_no_checks_is_unknown() -> None:
    assert Health.from_checks([]).status is U


# --- tracker --------------------------------------------------------------------------------------


def tracker(**kw: object) -> tuple[HealthTracker, FakeClock]:
    clock = FakeClock(start=10_000.0)
    return HealthTracker(clock, **kw), clock  # type: ignore[arg-type]


def test_no_calls_is_unknown() -> None:
    t, _ = tracker()
    snap = t.snapshot()
    assert snap.status is U
    assert snap.calls == 0
    assert snap.error_rate is None
    assert snap.p95 is None
    assert "no calls" in snap.detail


def test_successful_calls_are_healthy() -> None:
    t, _ = tracker()
    for _ in range(10):
        t.record(True, 0.1)
    snap = t.snapshot()
    assert snap.status is H
    assert snap.error_rate == 0.0
    assert snap.calls == 10


def test_some_errors_degrade_and_many_errors_make_unhealthy() -> None:
    t, _ = tracker()
    for i in range(20):
        t.record(i % 10 != 0, 0.1, None if i % 10 else "ServiceUnavailable")
    assert t.snapshot().error_rate == pytest.approx(0.1)
    assert t.status() is D
    for _ in range(30):
        t.record(False, 0.1, "ServiceUnavailable")
    assert t.status() is X


def test_few_calls_with_errors_are_degraded_not_unhealthy() -> None:
    t, _ = tracker(min_calls=5)
    t.record(False, 0.1, "Timeout")
    t.record(False, 0.1, "Timeout")
    assert t.status() is D


def test_slow_p95_degrades() -> None:
    t, _ = tracker(slow_p95=1.0)
    for _ in range(10):
        t.record(True, 2.0)
    snap = t.snapshot()
    assert snap.status is D
    assert "slower than" in snap.detail


def test_last_success_and_failure_with_time_and_code() -> None:
    t, clock = tracker()
    t.record(True, 0.1)
    success_at = clock.time()
    clock.advance(5)
    t.record(False, 0.1, "RateLimited")
    snap = t.snapshot()
    assert snap.last_success_at == success_at
    assert snap.last_failure_at == success_at + 5
    assert snap.last_error_code == "RateLimited"


def test_calls_older_than_the_window_are_forgotten() -> None:
    t, clock = tracker()
    for _ in range(10):
        t.record(False, 0.1, "X")
    clock.advance(290)
    assert t.snapshot().calls == 10
    clock.advance(20)
    snap = t.snapshot()
    assert snap.calls == 0
    assert snap.status is U
    assert snap.last_error_code == "X"  # the last failure is remembered regardless


def test_series_has_one_point_per_bucket_oldest_first() -> None:
    t, clock = tracker()
    t.record(False, 0.2, "X")
    clock.advance(10)
    t.record(True, 0.2)
    t.record(True, 0.2)
    series = t.snapshot().series
    assert len(series) == 30
    assert [p.calls for p in series[-2:]] == [1, 2]
    assert [p.error_rate for p in series[-2:]] == [1.0, 0.0]
    assert series[0].calls == 0
    assert series[0].error_rate is None
    assert series[-1].p95 == pytest.approx(0.2, rel=0.1)
    assert series[-1].start - series[-2].start == pytest.approx(10.0)


def test_snapshot_serialises_to_json() -> None:
    t, _ = tracker()
    t.record(False, 0.3, "Timeout")
    snap = t.snapshot()
    data = snap.to_dict()
    assert json.loads(json.dumps(data)) == data
    check = HealthCheck.from_tracker("recent_calls", snap)
    assert check.status is snap.status
    assert check.data["last_error_code"] == "Timeout"


def test_memory_stays_bounded_under_load() -> None:
    t, clock = tracker()
    for i in range(20_000):
        t.record(i % 7 != 0, (i % 1000) / 100 + 0.001, "E")
        clock.advance(0.05)  # 1000 seconds in all: the ring wraps three times
    assert len(t._ring) == 30
    assert all(len(b.bins) <= 100 for b in t._ring)


def test_invalid_window_is_rejected() -> None:
    with pytest.raises(ValueError, match="window"):
        HealthTracker(FakeClock(), window=0)


def nearest_rank(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(min_value=0.001, max_value=120.0), min_size=1, max_size=300))
def test_p95_is_within_ten_percent_of_the_exact_value(durations: list[float]) -> None:
    t, _ = tracker()
    for d in durations:
        t.record(True, d)
    p95 = t.snapshot().p95
    assert p95 is not None
    assert p95 == pytest.approx(nearest_rank(durations, 0.95), rel=0.1)

"""Sforce-Limit-Info parsing and the quota health check."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from connectors.adapters.salesforce.limits import QuotaState, Usage, parse_limit_info
from connectors.clock import FakeClock
from connectors.observability.health import HealthStatus


def test_parses_every_pair_including_per_app_usage() -> None:
    parsed = parse_limit_info(
        "api-usage=25/5000; per-app-api-usage=17/250(appName=sample-connected-app); junk"
    )
    assert parsed["api-usage"] == Usage(25, 5000)
    assert parsed["per-app-api-usage"] == Usage(17, 250, "sample-connected-app")


@given(st.integers(0, 10**9), st.integers(0, 10**9))
def test_any_used_and_max_round_trip(used: int, maximum: int) -> None:
    usage = parse_limit_info(f"api-usage={used}/{maximum}; api-bursts=1/750")["api-usage"]
    assert (usage.used, usage.max) == (used, maximum)
    assert 0.0 <= usage.remaining_fraction <= 1.0


def test_health_is_healthy_degraded_then_unhealthy_as_quota_runs_out() -> None:
    clock = FakeClock()
    quota = QuotaState(clock)
    assert quota.check().status is HealthStatus.UNKNOWN
    for header, status in (
        ("api-usage=10/100", HealthStatus.HEALTHY),
        ("api-usage=95/100", HealthStatus.DEGRADED),
        ("api-usage=100/100", HealthStatus.UNHEALTHY),
    ):
        quota.observe({"Sforce-Limit-Info": header})
        assert quota.check().status is status


def test_exhaustion_lasts_until_the_window_rolls() -> None:
    clock = FakeClock()
    quota = QuotaState(clock)
    quota.mark_exhausted(60)
    assert quota.exhausted_for() == 60
    assert quota.check().status is HealthStatus.UNHEALTHY
    clock.advance(61)
    assert quota.exhausted_for() == 0

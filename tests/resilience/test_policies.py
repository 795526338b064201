"""Policy values are validated with errors that name the field and the accepted range."""

from __future__ import annotations

import math

import pytest

from connectors.errors import InvalidSetting
from connectors.resilience.policies import (
    BreakerPolicy,
    BulkheadPolicy,
    RateLimit,
    ResiliencePolicy,
    RetryPolicy,
)


def test_defaults_match_the_documented_ones():
    p = ResiliencePolicy()
    assert (p.retry.max_attempts, p.retry.base_delay, p.retry.max_delay) == (3, 0.1, 10.0)
    assert p.retry.jitter == "full"
    assert p.retry.max_retry_after == 300.0
    assert (p.breaker.mode, p.breaker.failure_threshold, p.breaker.reset_timeout) == (
        "consecutive",
        5,
        30.0,
    )
    assert p.breaker.half_open_max_calls == 1
    assert (p.bulkhead.max_concurrent, p.bulkhead.max_queue) == (50, 100)
    assert p.attempt_timeout == 30.0
    assert p.deadline is None
    assert p.rate_limits == ()


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: RetryPolicy(max_attempts=0), "retry.max_attempts"),
        (lambda: RetryPolicy(max_attempts=True), "retry.max_attempts"),
        (lambda: RetryPolicy(base_delay=-1), "retry.base_delay"),
        (lambda: RetryPolicy(base_delay=math.nan), "retry.base_delay"),
        (lambda: RetryPolicy(base_delay=2, max_delay=1), "retry.max_delay"),
        (lambda: RetryPolicy(jitter="random"), "retry.jitter"),  # type: ignore[arg-type]
        (lambda: RetryPolicy(max_elapsed=0), "retry.max_elapsed"),
        (lambda: BreakerPolicy(mode="sometimes"), "circuit_breaker.mode"),  # type: ignore[arg-type]
        (lambda: BreakerPolicy(failure_threshold=0), "circuit_breaker.failure_threshold"),
        (lambda: BreakerPolicy(failure_ratio=1.5), "circuit_breaker.failure_ratio"),
        (lambda: BreakerPolicy(failure_ratio=0), "circuit_breaker.failure_ratio"),
        (lambda: BreakerPolicy(minimum_calls=0), "circuit_breaker.minimum_calls"),
        (lambda: BreakerPolicy(window=math.inf), "circuit_breaker.window"),
        (lambda: BreakerPolicy(reset_timeout=0), "circuit_breaker.reset_timeout"),
        (lambda: BreakerPolicy(half_open_max_calls=0), "circuit_breaker.half_open_max_calls"),
        (lambda: BreakerPolicy(slow_call_duration=-1), "circuit_breaker.slow_call_duration"),
        (lambda: RateLimit("", rate=1), "rate_limits.key"),
        (lambda: RateLimit("k", rate=0), "rate_limits.rate"),
        (lambda: RateLimit("k", rate=math.inf), "rate_limits.rate"),
        (lambda: RateLimit("k", rate=1, burst=0), "rate_limits.burst"),
        (lambda: RateLimit("k", rate=1, burst=1, cost=2), "rate_limits.cost"),
        (lambda: BulkheadPolicy(max_concurrent=0), "bulkhead.max_concurrent"),
        (lambda: BulkheadPolicy(max_queue=-1), "bulkhead.max_queue"),
        (lambda: BulkheadPolicy(max_wait=0), "bulkhead.max_wait"),
        (lambda: ResiliencePolicy(attempt_timeout=0), "timeout"),
        (lambda: ResiliencePolicy(deadline=-5), "deadline"),
        (lambda: ResiliencePolicy(retry=3), "retry"),  # type: ignore[arg-type]
        (lambda: ResiliencePolicy(rate_limits=("api",)), "rate_limits"),  # type: ignore[arg-type]
    ],
)
def test_invalid_values_name_the_field(build, field):
    with pytest.raises(InvalidSetting) as info:
        build()
    assert info.value.setting == field
    assert field in str(info.value)


def test_rate_limits_become_a_tuple_so_policies_stay_hashable():
    policy = ResiliencePolicy(rate_limits=[RateLimit("api", rate=5)])  # type: ignore[arg-type]
    assert policy.rate_limits == (RateLimit("api", rate=5),)
    assert hash(policy) == hash(ResiliencePolicy(rate_limits=(RateLimit("api", rate=5),)))


def test_infinite_attempt_timeout_means_no_per_attempt_bound():
    assert ResiliencePolicy(attempt_timeout=math.inf).attempt_timeout == math.inf


def test_breaker_policy_maps_onto_backend_config():
    config = BreakerPolicy(mode="ratio", minimum_calls=20).config(probe_lease=31.0)
    assert config.mode == "ratio"
    assert config.minimum_calls == 20
    assert config.probe_lease == 31.0

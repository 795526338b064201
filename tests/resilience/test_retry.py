"""Retry decisions: backoff bounds, Retry-After parsing, what is retried and when to give up."""

from __future__ import annotations

import math
from email.utils import formatdate

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.errors import (
    AmbiguousOutcome,
    BulkheadFull,
    CircuitOpen,
    ConnectionFailed,
    DeadlineExceeded,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    Timeout,
    TransientError,
)
from connectors.resilience.policies import RetryPolicy
from connectors.resilience.retry import (
    GiveUpReason,
    backoff_delay,
    decide_retry,
    error_reason,
    is_retryable,
    parse_retry_after,
)

NOW = 1_700_000_000.0


# --- backoff -----------------------------------------------------------------------------------


@given(
    base=st.floats(0.0, 5.0),
    extra=st.floats(0.0, 100.0),
    retry=st.integers(1, 2000),
    u=st.floats(0.0, 1.0, exclude_max=True),
)
def test_full_jitter_is_uniform_below_the_capped_exponential(base, extra, retry, u):
    policy = RetryPolicy(base_delay=base, max_delay=base + extra, jitter="full")
    cap = min(base * 2.0 ** min(retry - 1, 1023), base + extra)
    delay = backoff_delay(policy, retry, lambda: u)
    assert 0.0 <= delay <= cap
    assert delay == pytest.approx(cap * u)


@given(retry=st.integers(1, 80), u=st.floats(0.0, 1.0, exclude_max=True))
def test_equal_jitter_stays_in_the_upper_half(retry, u):
    policy = RetryPolicy(base_delay=0.1, max_delay=10.0, jitter="equal")
    cap = min(0.1 * 2.0 ** (retry - 1), 10.0)
    assert cap / 2 <= backoff_delay(policy, retry, lambda: u) <= cap


def test_no_jitter_doubles_up_to_the_cap():
    policy = RetryPolicy(base_delay=0.1, max_delay=1.0, jitter="none")
    assert [backoff_delay(policy, n) for n in range(1, 7)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    )


def test_full_jitter_spreads_over_the_whole_range():
    policy = RetryPolicy(base_delay=1.0, max_delay=1.0)
    delays = [backoff_delay(policy, 1) for _ in range(2000)]
    assert min(delays) < 0.05
    assert max(delays) > 0.95


# --- Retry-After -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [("0", 0.0), ("120", 120.0), (" 7 ", 7.0), ("1.5", 1.5)],
)
def test_retry_after_delta_seconds(value, expected):
    assert parse_retry_after(value, NOW) == expected


def test_retry_after_http_date_in_the_future():
    value = formatdate(NOW + 90, usegmt=True)
    assert parse_retry_after(value, NOW) == pytest.approx(90.0)


@pytest.mark.parametrize(
    "value",
    [
        "Sunday, 06-Nov-94 08:49:37 GMT",  # RFC 850, long past
        "Sun Nov  6 08:49:37 1994",  # asctime, long past
        formatdate(NOW - 5, usegmt=True),
        formatdate(NOW, usegmt=True),
    ],
)
def test_retry_after_in_the_past_falls_back_to_backoff(value):
    assert parse_retry_after(value, NOW) is None


def test_retry_after_rfc850_and_asctime_dates_are_understood():
    assert parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", 784111777.0 - 10) == pytest.approx(
        10.0
    )
    assert parse_retry_after("Sun Nov  6 08:49:37 1994", 784111777.0 - 10) == pytest.approx(10.0)


@pytest.mark.parametrize(
    "value",
    ["", "   ", "soon", "-5", "1e3", "inf", "nan", "12 seconds", "Mon, 99 Nov 1994 08:49:37 GMT"],
)
def test_retry_after_garbage_is_none(value):
    assert parse_retry_after(value, NOW) is None


@given(st.text(max_size=40))
def test_retry_after_never_raises_and_never_goes_negative(value):
    parsed = parse_retry_after(value, NOW)
    assert parsed is None or (parsed >= 0.0 and math.isfinite(parsed))


@given(st.integers(0, 10**9))
def test_retry_after_delta_round_trips(seconds):
    assert parse_retry_after(str(seconds), NOW) == float(seconds)


# --- what is retried ---------------------------------------------------------------------------


def decide(error, *, attempt=1, idempotent=True, elapsed=0.0, remaining=math.inf, **policy):
    return decide_retry(
        RetryPolicy(**policy),
        error,
        attempt=attempt,
        idempotent=idempotent,
        elapsed=elapsed,
        remaining=remaining,
        rand=lambda: 0.5,
    )


@pytest.mark.parametrize(
    "error",
    [
        ServiceUnavailable("503"),
        ConnectionFailed("refused"),
        Timeout("slow"),
        AmbiguousOutcome("reset"),
        RateLimited(),
    ],
)
def test_transient_errors_are_retried_for_idempotent_operations(error):
    decision = decide(error)
    assert decision.retry
    assert decision.reason == error_reason(error)


@pytest.mark.parametrize(
    "error",
    [
        NotFound("gone"),
        InvalidRequest("bad"),
        CircuitOpen(retry_after=1.0),
        BulkheadFull("full"),
        DeadlineExceeded(),
    ],
)
def test_permanent_and_fail_fast_errors_are_not_retried(error):
    assert not is_retryable(error)
    decision = decide(error)
    assert not decision.retry
    assert decision.reason == GiveUpReason.NOT_RETRYABLE


def test_a_transient_subclass_can_opt_out_of_retries():
    class Poisoned(TransientError):
        retryable = False

    assert not decide(Poisoned("no")).retry


@pytest.mark.parametrize(
    "error",
    [AmbiguousOutcome("lost"), Timeout("read timeout", request_sent=True), ServiceUnavailable("x")],
)
def test_non_idempotent_operation_is_not_retried_when_the_request_may_have_arrived(error):
    decision = decide(error, idempotent=False)
    assert not decision.retry
    assert decision.reason == GiveUpReason.NOT_IDEMPOTENT


@pytest.mark.parametrize(
    "error", [ConnectionFailed("refused"), Timeout("connect timeout", request_sent=False)]
)
def test_non_idempotent_operation_is_retried_when_the_request_never_left(error):
    assert decide(error, idempotent=False).retry


def test_attempts_are_bounded():
    assert decide(ServiceUnavailable("x"), attempt=2, max_attempts=3).retry
    decision = decide(ServiceUnavailable("x"), attempt=3, max_attempts=3)
    assert not decision.retry
    assert decision.reason == GiveUpReason.ATTEMPTS


def test_retry_after_replaces_backoff_and_is_capped():
    decision = decide(RateLimited(retry_after=7.0))
    assert decision.retry
    assert decision.delay == 7.0
    assert decision.from_retry_after
    capped = decide(RateLimited(retry_after=3600.0), max_retry_after=60.0)
    assert capped.delay == 60.0
    ignored = decide(RateLimited(retry_after=7.0), respect_retry_after=False, base_delay=0.2)
    assert ignored.delay == pytest.approx(0.1)
    assert not ignored.from_retry_after


def test_gives_up_when_the_wait_would_reach_the_deadline():
    decision = decide(RateLimited(retry_after=5.0), remaining=4.0)
    assert not decision.retry
    assert decision.reason == GiveUpReason.DEADLINE
    assert decision.delay == 5.0
    assert decide(RateLimited(retry_after=3.0), remaining=4.0).retry


def test_gives_up_when_the_wait_would_pass_max_elapsed():
    decision = decide(RateLimited(retry_after=5.0), elapsed=6.0, max_elapsed=10.0)
    assert not decision.retry
    assert decision.reason == GiveUpReason.MAX_ELAPSED


def test_error_reason_is_snake_case_class_name():
    assert error_reason(ServiceUnavailable("x")) == "service_unavailable"
    assert error_reason(RateLimited()) == "rate_limited"

"""The retry schedule and the disable policy values."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.adapters.webhook.schedule import DEFAULT_DELAYS, DisablePolicy, RetrySchedule
from connectors.errors import InvalidSetting


def test_the_default_is_svix_schedule():
    assert DEFAULT_DELAYS == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
    schedule = RetrySchedule()
    assert schedule.max_attempts == 8
    assert [schedule.delay_after(n) for n in range(1, 9)] == [
        5,
        300,
        1800,
        7200,
        18000,
        36000,
        36000,
        None,
    ]


def test_retry_after_only_lengthens_and_is_capped():
    schedule = RetrySchedule.of([0, 5, 10])
    assert schedule.delay_after(1, retry_after=1) == 5
    assert schedule.delay_after(1, retry_after=60) == 60
    assert schedule.delay_after(1, retry_after=10**9) == schedule.max_retry_after


@given(st.floats(0, 0.9), st.integers(1, 7))
def test_jitter_stays_within_its_fraction(jitter, attempts):
    schedule = RetrySchedule(jitter=jitter)
    base = DEFAULT_DELAYS[attempts]
    delay = schedule.delay_after(attempts)
    assert base * (1 - jitter) - 1e-9 <= delay <= base * (1 + jitter) + 1e-9


def test_invalid_schedules_are_refused():
    with pytest.raises(InvalidSetting):
        RetrySchedule(())
    with pytest.raises(InvalidSetting):
        RetrySchedule((0, -1))
    with pytest.raises(InvalidSetting):
        RetrySchedule(jitter=1.5)


def test_disable_policy_defaults_to_five_days_or_five_dead_letters():
    policy = DisablePolicy()
    assert policy.failing_for == 5 * 24 * 3600
    assert policy.dead_letters == 5
    assert policy.on_gone

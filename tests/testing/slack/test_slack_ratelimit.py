"""Tier limits per method per workspace, chat.postMessage's per-channel limit, 429 shape."""

from __future__ import annotations

import asyncio
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.clock import FakeClock
from connectors.testing.slack.ratelimit import BucketLimiter, format_retry_after


def _until_limited(slack, method, limit=200, **args):
    for n in range(1, limit + 1):
        response = slack.raw(method, **args)
        if response.status_code == 429:
            return n, response
    raise AssertionError("never rate limited")


def test_tier_two_allows_twenty_then_answers_429_with_retry_after(make_emulator, caller) -> None:
    slack = caller(make_emulator())
    n, response = _until_limited(slack, "conversations.list")
    assert n == 21
    assert response.json() == {"ok": False, "error": "ratelimited"}
    assert response.headers["retry-after"] == "3"


def test_waiting_retry_after_lets_the_next_call_through(make_emulator, caller, clock) -> None:
    slack = caller(make_emulator())
    _, response = _until_limited(slack, "users.list")
    clock.advance(int(response.headers["retry-after"]))
    assert slack.raw("users.list").status_code == 200
    assert slack.raw("users.list").status_code == 429


def test_tiers_follow_the_method_docs(make_emulator, caller) -> None:
    slack = caller(make_emulator())
    assert _until_limited(slack, "conversations.info", channel="C00000001")[0] == 51
    assert _until_limited(slack, "users.info", user="U00000001")[0] == 101


def test_limits_are_per_method(make_emulator, caller) -> None:
    slack = caller(make_emulator())
    _until_limited(slack, "users.list")
    assert slack.raw("users.info", user="U00000001").status_code == 200


def test_non_marketplace_history_is_one_per_minute(make_emulator, caller, clock) -> None:
    slack = caller(make_emulator(marketplace_app=False))
    assert slack.raw("conversations.history", channel="C00000001").status_code == 200
    limited = slack.raw("conversations.history", channel="C00000001")
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "60")


def test_post_message_allows_a_short_burst_then_one_per_second_per_channel(
    make_emulator, caller, clock
) -> None:
    slack = caller(make_emulator())
    statuses = [
        slack.raw("chat.postMessage", channel="C00000001", text="x").status_code for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    assert slack.raw("chat.postMessage", channel="C00000004", text="x").status_code == 200
    clock.advance(1.0)
    assert slack.raw("chat.postMessage", channel="C00000001", text="x").status_code == 200
    limited = slack.raw("chat.postMessage", channel="C00000001", text="x")
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "1")


def test_time_scale_shrinks_windows_and_can_send_fractional_retry_after(
    make_emulator, caller, clock
) -> None:
    slack = caller(make_emulator(time_scale=60.0, integer_retry_after=False))
    _, response = _until_limited(slack, "users.list")
    wait = float(response.headers["retry-after"])
    assert 0 < wait <= 0.05
    clock.advance(wait)
    assert slack.raw("users.list").status_code == 200


def test_rate_limits_can_be_switched_off_per_test(make_emulator, caller) -> None:
    emulator = make_emulator()
    emulator.rate_limits_enabled = False
    slack = caller(emulator)
    assert all(slack.raw("users.list").status_code == 200 for _ in range(50))
    emulator.rate_limits_enabled = True
    emulator.reset_rate_limits()
    assert _until_limited(slack, "users.list")[0] == 21


def test_retry_after_is_whole_seconds_rounded_up_unless_fractional() -> None:
    assert format_retry_after(0.2, integer=True) == "1"
    assert format_retry_after(2.0, integer=True) == "2"
    assert format_retry_after(2.01, integer=True) == "3"
    assert format_retry_after(0.0123, integer=False) == "0.013"


@settings(max_examples=60, deadline=None)
@given(
    per_minute=st.integers(1, 200),
    steps=st.lists(st.floats(0, 30, allow_nan=False), min_size=1, max_size=60),
)
def test_a_bucket_never_grants_more_than_burst_plus_refill(per_minute, steps) -> None:
    clock = FakeClock()
    limiter = BucketLimiter(clock)
    granted = 0
    for step in steps:
        clock.advance(step)
        if limiter.take(("k",), per_minute / 60, per_minute) is None:
            granted += 1
    elapsed = sum(steps)
    assert granted <= per_minute + math.floor(elapsed * per_minute / 60) + 1


def test_bucket_wait_is_exactly_the_time_to_the_next_token() -> None:
    clock = FakeClock()
    limiter = BucketLimiter(clock)
    assert limiter.take(("k",), 0.5, 1) is None
    wait = limiter.take(("k",), 0.5, 1)
    assert wait == 2.0
    clock.advance(wait)
    assert limiter.take(("k",), 0.5, 1) is None
    asyncio.run(asyncio.sleep(0))

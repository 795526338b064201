"""Client-side pacing: limiter keys per tier and per channel, zero 429s against the emulator."""

from __future__ import annotations

import asyncio

import pytest

from connectors.adapters.slack.limits import SlackRateLimits, webhook_digest
from connectors.errors import InvalidSetting, RateLimited


def test_tier_methods_get_a_key_per_method_at_the_tier_floor():
    [limit] = SlackRateLimits().for_method("conversations.list")
    assert limit.key == "tier2:conversations.list"
    assert limit.rate == pytest.approx(20 / 60)
    assert limit.burst == 19  # one below Slack's bucket: room for jitter
    [tier4] = SlackRateLimits().for_method("users.info")
    assert (tier4.key, tier4.rate) == ("tier4:users.info", pytest.approx(100 / 60))


def test_unknown_methods_are_paced_as_tier_two():
    [limit] = SlackRateLimits().for_method("pins.add")
    assert limit.key == "tier2:pins.add"


def test_special_methods_are_not_limited_unless_configured():
    assert SlackRateLimits().for_method("auth.test") == ()
    [limit] = SlackRateLimits(special_per_minute={"auth.test": 600}).for_method("auth.test")
    assert limit.rate == pytest.approx(10.0)


def test_post_message_is_paced_per_channel():
    limits = SlackRateLimits()
    [general] = limits.for_post("C00000001")
    [alerts] = limits.for_post("C00000004")
    assert general.key == "chat.postMessage:C00000001" != alerts.key
    assert (general.rate, general.burst) == (1.0, 1.0)


def test_scale_multiplies_every_rate():
    limits = SlackRateLimits(scale=100.0, post_message_burst=2)
    [post] = limits.for_post("C1")
    [tier] = limits.for_method("users.list")
    assert (post.rate, post.burst) == (100.0, 2.0)
    assert tier.rate == pytest.approx(20 / 60 * 100)


def test_non_marketplace_apps_get_one_history_call_per_minute():
    [limit] = SlackRateLimits(marketplace_app=False).for_method("conversations.history")
    assert limit.rate == pytest.approx(1 / 60)
    assert limit.burst == 1


def test_disabled_limits_take_no_keys():
    limits = SlackRateLimits(enabled=False)
    assert limits.for_method("users.list") == limits.for_post("C1") == ()
    assert limits.for_webhook("abc") == ()


def test_webhook_keys_hold_a_digest_never_the_url():
    url = "https://hooks.slack.com/services/T1/B1/very-secret"
    [limit] = SlackRateLimits().for_webhook(webhook_digest(url))
    assert "very-secret" not in limit.key
    assert limit.key.startswith("webhook:")
    assert webhook_digest(url) == webhook_digest(url) != webhook_digest(url + "x")


@pytest.mark.parametrize(
    "field", ["scale", "post_message_rate", "post_message_burst", "webhook_rate"]
)
def test_rates_must_be_positive(field):
    with pytest.raises(InvalidSetting):
        SlackRateLimits(**{field: 0})


def test_a_burst_of_tier_two_calls_gets_zero_429s(make_world):
    world = make_world(time_scale=60.0, integer_retry_after=False)

    async def main():
        async with world.open(rate_scale=60) as slack:
            start = world.clock.monotonic()
            await asyncio.gather(*(slack.join("general") for _ in range(120)))  # Tier 3
            await asyncio.gather(*([_drain(slack.list_users(page_size=1000)) for _ in range(60)]))
            return world.clock.monotonic() - start

    elapsed = world.run(main())
    assert world.transport.throttled == 0
    assert world.transport.statuses.count(200) == 1 + 180  # one name lookup, then the calls
    assert elapsed > 1.0  # paced: 60 Tier 2 calls cannot fit in the burst


def test_without_client_pacing_the_same_burst_is_throttled(make_world):
    world = make_world(time_scale=60.0, integer_retry_after=False)

    async def main():
        async with world.open(rate_scale=60, rate_limits=False) as slack:
            return await asyncio.gather(
                *(_drain(slack.list_users(page_size=1000)) for _ in range(60)),
                return_exceptions=True,
            )

    world.run(main())
    assert world.transport.throttled > 0  # the control: pacing is what prevented them


def test_posting_to_one_channel_is_paced_and_channels_run_in_parallel(make_world):
    world = make_world(time_scale=10.0, integer_retry_after=False)

    async def one_channel(slack, channel, count):
        for n in range(count):
            await slack.post_message(channel, f"{channel} {n}")

    async def main():
        async with world.open(rate_scale=10) as slack:
            start = world.clock.monotonic()
            channels = (world.emulator.channel("general").id, world.emulator.channel("alerts").id)
            await asyncio.gather(*(one_channel(slack, c, 21) for c in channels))
            return world.clock.monotonic() - start

    elapsed = world.run(main())
    assert world.transport.throttled == 0
    assert elapsed == pytest.approx(20 / 10, abs=0.05)  # 21 messages at 10/s, both at once


def test_a_429_is_honoured_with_retry_after_even_for_post_message(make_world):
    world = make_world()  # Slack's integer Retry-After, one message per second, burst 3

    async def main():
        async with world.open(rate_limits=False) as slack:
            start = world.clock.monotonic()
            for n in range(5):
                await slack.post_message("general", f"fast {n}")
            return world.clock.monotonic() - start

    elapsed = world.run(main())
    assert world.transport.throttled >= 1
    texts = [m.text for m in world.emulator.channel("general").messages]
    assert texts[-5:] == [f"fast {n}" for n in range(5)]  # each posted exactly once
    assert elapsed >= 1.0  # the Retry-After wait


def test_a_retry_after_beyond_the_deadline_surfaces_as_rate_limited(make_world):
    # One auth.test per minute, on a clock ten times slower: Retry-After 600 s > deadline 120 s.
    world = make_world(special_per_minute={"auth.test": 1}, time_scale=0.1)

    async def main():
        async with world.open(rate_limits=False) as slack:
            await slack.auth_test()
            start = world.clock.monotonic()
            try:
                await slack.auth_test()
            finally:
                assert world.clock.monotonic() == start  # gave up at once, no pointless wait

    with pytest.raises(RateLimited) as info:
        world.run(main())
    assert info.value.retry_after == 600.0
    assert info.value.provider_code == "ratelimited"


async def _drain(iterator) -> int:
    return sum([1 async for _ in iterator])

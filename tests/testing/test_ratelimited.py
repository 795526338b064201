"""The rate-enforcing emulator (:mod:`connectors.testing.ratelimited`): GCRA at R/s with a
burst tolerance, 429 with ``Retry-After`` above it, per-second counts; on a :class:`FakeClock`."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.clock import FakeClock
from connectors.testing.ratelimited import RateLimitedAPI

# --- the emulator's limit (virtual time) ---------------------------------------------------------


def test_admits_the_burst_then_one_request_per_interval_and_refuses_the_rest():
    clock = FakeClock()
    api = RateLimitedAPI(10, burst=3, clock=clock)
    assert [api.hit() for _ in range(3)] == [None, None, None]
    assert api.hit() == pytest.approx(0.1)  # the next one is due in 1/rate
    clock.advance(0.1)
    assert api.hit() is None
    assert api.hit() == pytest.approx(0.1)
    clock.advance(10)  # idle time refills the burst, never more
    assert [api.hit() for _ in range(4)] == [None, None, None, pytest.approx(0.1)]
    assert (api.admitted, api.rejected) == (7, 3)


def test_a_refused_request_uses_up_no_quota():
    clock = FakeClock()
    api = RateLimitedAPI(10, burst=1, clock=clock)
    assert api.hit() is None
    for _ in range(5):
        assert api.hit() is not None
    clock.advance(0.1)
    assert api.hit() is None


@settings(max_examples=200, deadline=None)
@given(
    rate=st.sampled_from([1.0, 7.0, 200.0]),
    burst=st.sampled_from([1.0, 2.0, 20.0]),
    gaps=st.lists(st.floats(0, 0.5), min_size=1, max_size=120),
)
def test_no_interval_ever_admits_more_than_rate_times_its_length_plus_burst(rate, burst, gaps):
    clock = FakeClock()
    api = RateLimitedAPI(rate, burst=burst, clock=clock)
    admitted: list[float] = []
    for gap in gaps:
        clock.advance(gap)
        if api.hit() is None:
            admitted.append(clock.monotonic())
    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            assert j - i + 1 <= rate * (admitted[j] - start) + burst + 1e-9


def test_counts_by_window_and_by_second_and_reports_the_burst_it_needed():
    clock = FakeClock(start=100.0)
    api = RateLimitedAPI(4, burst=2, clock=clock)
    for _ in range(3):  # two admitted, one refused
        api.hit()
    clock.advance(1.5)
    api.hit()
    assert api.window(100.0, 101.0).admitted == 2
    assert api.window(100.0, 101.0).rejected == 1
    assert api.window(100.0, 102.0).rate == pytest.approx(1.5)
    assert api.per_second() == [(2, 1), (1, 0)]
    assert api.peak_burst == pytest.approx(2.0)  # the second request used the whole tolerance
    api.reset()
    assert (api.admitted, api.rejected, api.per_second(), api.peak_burst) == (0, 0, [], 1.0)


@pytest.mark.parametrize(("rate", "burst"), [(0, None), (-1, None), (float("inf"), None), (5, 0.5)])
def test_a_rate_or_burst_that_cannot_be_enforced_is_refused(rate, burst):
    with pytest.raises(ValueError, match=r"rate|burst"):
        RateLimitedAPI(rate, burst)


def test_the_default_burst_tolerates_a_fifth_of_a_second_of_jitter():
    assert RateLimitedAPI(200).burst == 40
    assert RateLimitedAPI(2).burst == 1


# --- the emulator over HTTP (in process) ---------------------------------------------------------


def test_answers_200_then_429_with_retry_after_and_serves_uncounted_control_routes():
    clock = FakeClock(start=50.0)
    api = RateLimitedAPI(2, burst=1, clock=clock)

    async def main() -> list[httpx2.Response]:
        transport = httpx2.ASGITransport(app=api)
        async with httpx2.AsyncClient(transport=transport, base_url="http://api") as client:
            return [
                await client.post("/v1/things", json={"a": 1}),
                await client.get("/v1/things"),
                await client.get("/_stats", params={"start": "50", "end": "51"}),
                await client.get("/_stats", params={"start": "x", "end": "51"}),
                await client.get("/_nothing"),
                await client.post("/_reset"),
                await client.get("/_stats"),
            ]

    ok, limited, stats, bad, missing, reset, after = asyncio.run(main())
    assert (ok.status_code, ok.json()) == (200, {"ok": True})
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "1"
    assert limited.json()["error"] == "rate_limited"
    body = stats.json()
    assert (body["admitted"], body["rejected"], body["per_second"]) == (1, 1, [[1, 1]])
    assert body["window"] == {"start": 50.0, "end": 51.0, "admitted": 1, "rejected": 1, "rate": 1.0}
    assert (bad.status_code, missing.status_code, reset.status_code) == (400, 404, 200)
    assert (after.json()["admitted"], after.json()["rejected"]) == (0, 0)


def test_speaks_the_asgi_lifespan_protocol():
    api = RateLimitedAPI(1)
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(api({"type": "lifespan"}, receive, send))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]

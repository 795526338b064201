"""The StateBackend contract, run against every backend: in memory, and Redis (real server).

The Redis backend runs with ``clock="client"`` here, so both backends see the same ``now`` and
must give the *same* answers, float for float; the last test drives both with random operation
sequences and compares every result. Server-clock behaviour is in ``test_redis.py``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.state import (
    BreakerConfig,
    BreakerOutcome,
    BreakerPermit,
    BreakerState,
    MemoryStateBackend,
    RateDecision,
    RateRequest,
    StateBackend,
)
from connectors.state.redis import RedisStateBackend
from tests.servers.redis import RedisServer, redis_server

__all__ = ["redis_server"]

T = TypeVar("T")
Scenario = Callable[[StateBackend], Awaitable[T]]


@asynccontextmanager
async def open_backend(kind: str, server: RedisServer | None) -> AsyncIterator[StateBackend]:
    if kind == "memory":
        yield MemoryStateBackend()
        return
    assert server is not None
    backend = RedisStateBackend(
        server.url, clock="client", prefix=f"contract-{uuid.uuid4().hex[:10]}:"
    )
    try:
        yield backend
    finally:
        await backend.aclose()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.server)])
def run(request: pytest.FixtureRequest) -> Callable[[Scenario[T]], T]:
    kind = request.param
    server = request.getfixturevalue("redis_server") if kind == "redis" else None

    def runner(scenario: Scenario[T]) -> T:
        async def main() -> T:
            async with open_backend(kind, server) as backend:
                return await scenario(backend)

        return asyncio.run(main())

    return runner


def test_backend_satisfies_the_protocol(run):
    assert run(lambda b: _value(isinstance(b, StateBackend)))


async def _value(value: T) -> T:
    return value


# --- GCRA ----------------------------------------------------------------------------------------


def test_fresh_key_admits_its_burst_at_once_then_paces(run):
    async def scenario(b: StateBackend) -> list[float]:
        return [
            (await b.rate_acquire("k", rate=10, burst=3, cost=1, max_wait=60, now=0.0)).wait
            for _ in range(5)
        ]

    assert run(scenario) == pytest.approx([0.0, 0.0, 0.0, 0.1, 0.2])


def test_a_wait_past_max_wait_reserves_nothing(run):
    async def scenario(b: StateBackend) -> tuple[RateDecision, RateDecision]:
        await b.rate_acquire("k", rate=1, burst=1, cost=1, max_wait=60, now=0.0)
        refused = await b.rate_acquire("k", rate=1, burst=1, cost=1, max_wait=0.5, now=0.0)
        again = await b.rate_acquire("k", rate=1, burst=1, cost=1, max_wait=60, now=0.0)
        return refused, again

    refused, again = run(scenario)
    assert not refused.admitted
    assert refused.wait == pytest.approx(1.0)
    assert again.admitted
    assert again.wait == pytest.approx(1.0)


def test_an_unbounded_max_wait_is_accepted(run):
    async def scenario(b: StateBackend) -> RateDecision:
        await b.rate_acquire("k", rate=1, burst=1, cost=1, max_wait=float("inf"), now=0.0)
        return await b.rate_acquire("k", rate=1, burst=1, cost=1, max_wait=float("inf"), now=0.0)

    assert run(scenario) == RateDecision(admitted=True, wait=1.0)


def test_weighted_cost_and_refill(run):
    async def scenario(b: StateBackend) -> tuple[float, float, float, float]:
        await b.rate_acquire("k", rate=10, burst=5, cost=5, max_wait=60, now=0.0)
        nxt = await b.rate_acquire("k", rate=10, burst=5, cost=2, max_wait=60, now=0.0)
        return (
            nxt.wait,
            await b.rate_remaining("k", rate=10, burst=5, now=0.0),
            await b.rate_remaining("k", rate=10, burst=5, now=0.5),
            await b.rate_remaining("unused", rate=10, burst=5, now=0.0),
        )

    assert run(scenario) == pytest.approx((0.2, 0.0, 3.0, 5.0))


def test_block_admits_nothing_until_it_ends_then_the_burst(run):
    async def scenario(b: StateBackend) -> list[float]:
        await b.rate_block("k", seconds=30, now=0.0)
        out = [await b.rate_remaining("k", rate=1, burst=2, now=1.0)]
        for _ in range(3):
            d = await b.rate_acquire("k", rate=1, burst=2, cost=1, max_wait=60, now=1.0)
            out.append(d.wait)
        return out

    assert run(scenario) == pytest.approx([0.0, 29.0, 29.0, 30.0])


def test_acquire_many_reserves_every_key_at_one_time_or_none(run):
    both = [RateRequest("{t}:fast", rate=100, burst=1), RateRequest("{t}:slow", rate=1, burst=1)]

    async def scenario(b: StateBackend) -> tuple[RateDecision, float, RateDecision, float]:
        await b.rate_acquire("{t}:slow", rate=1, burst=1, cost=1, max_wait=60, now=0.0)
        refused = await b.rate_acquire_many(both, max_wait=0.5, now=0.0)
        fast_left = await b.rate_remaining("{t}:fast", rate=100, burst=1, now=0.0)
        ok = await b.rate_acquire_many(both, max_wait=60, now=0.0)
        later = await b.rate_acquire("{t}:fast", rate=100, burst=1, cost=1, max_wait=60, now=0.0)
        return refused, fast_left, ok, later.wait

    refused, fast_left, ok, later = run(scenario)
    assert not refused.admitted
    assert fast_left == 1.0
    assert ok.admitted
    assert ok.wait == pytest.approx(1.0)
    assert later == pytest.approx(1.01)


def test_acquire_many_adds_up_repeated_keys(run):
    reqs = [RateRequest("k", rate=10, burst=2), RateRequest("k", rate=10, burst=2)]

    async def scenario(b: StateBackend) -> tuple[float, float]:
        d = await b.rate_acquire_many(reqs, max_wait=60, now=0.0)
        return d.wait, await b.rate_remaining("k", rate=10, burst=2, now=0.0)

    assert run(scenario) == pytest.approx((0.0, 0.0))


# --- breaker -------------------------------------------------------------------------------------


async def _fail(b: StateBackend, key: str, config: BreakerConfig, now: float) -> object:
    permit = await b.breaker_acquire(key, config=config, now=now)
    return await b.breaker_record(
        key, config=config, permit=permit, outcome=BreakerOutcome.FAILURE, slow=False, now=now
    )


def test_consecutive_failures_open_then_probes_close(run):
    config = BreakerConfig(failure_threshold=2, reset_timeout=10, half_open_max_calls=2)

    async def scenario(b: StateBackend) -> list[object]:
        out: list[object] = [await _fail(b, "b", config, 0.0), await _fail(b, "b", config, 1.0)]
        rejected = await b.breaker_acquire("b", config=config, now=5.0)
        out.append((rejected.allowed, rejected.state, rejected.retry_after))
        p1 = await b.breaker_acquire("b", config=config, now=11.0)
        p2 = await b.breaker_acquire("b", config=config, now=11.0)
        p3 = await b.breaker_acquire("b", config=config, now=11.0)
        out += [p1.transition, p2.transition, p1.is_probe, p2.is_probe, p3.allowed]
        snap = await b.breaker_snapshot("b", config=config, now=11.0)
        out.append((snap.state, snap.half_open_in_flight, snap.opened_at))
        for p in (p1, p2):
            out.append(
                await b.breaker_record(
                    "b",
                    config=config,
                    permit=p,
                    outcome=BreakerOutcome.SUCCESS,
                    slow=False,
                    now=12.0,
                )
            )
        out.append((await b.breaker_snapshot("b", config=config, now=12.0)).state)
        return out

    out = run(scenario)
    assert out[0] is None
    assert out[1].to_state is BreakerState.OPEN
    assert out[2] == (False, BreakerState.OPEN, pytest.approx(6.0))
    assert out[3].to_state is BreakerState.HALF_OPEN
    assert out[4:8] == [None, True, True, False]
    assert out[8] == (BreakerState.HALF_OPEN, 2, 1.0)
    assert out[9] is None
    assert out[10].to_state is BreakerState.CLOSED
    assert out[11] is BreakerState.CLOSED


def test_report_success_is_needed_only_after_a_failure(run):
    config = BreakerConfig(failure_threshold=3)

    async def scenario(b: StateBackend) -> tuple[bool, bool, bool]:
        clean = await b.breaker_acquire("b", config=config, now=0.0)
        await _fail(b, "b", config, 0.0)
        dirty = await b.breaker_acquire("b", config=config, now=0.0)
        ratio = await b.breaker_acquire("r", config=BreakerConfig(mode="ratio"), now=0.0)
        return clean.report_success, dirty.report_success, ratio.report_success

    assert run(scenario) == (False, True, True)


def test_stale_generation_reports_are_ignored(run):
    config = BreakerConfig(failure_threshold=1, reset_timeout=10)

    async def scenario(b: StateBackend) -> tuple[object, BreakerState]:
        stale = await b.breaker_acquire("b", config=config, now=0.0)
        await _fail(b, "b", config, 0.0)
        await b.breaker_reset("b", now=1.0)
        t = await b.breaker_record(
            "b", config=config, permit=stale, outcome=BreakerOutcome.FAILURE, slow=False, now=1.0
        )
        return t, (await b.breaker_snapshot("b", config=config, now=1.0)).state

    assert run(scenario) == (None, BreakerState.CLOSED)


def test_ignored_probe_gives_its_slot_back_and_lease_expiry_frees_it(run):
    config = BreakerConfig(failure_threshold=1, reset_timeout=1, probe_lease=5)

    async def scenario(b: StateBackend) -> list[object]:
        await _fail(b, "b", config, 0.0)
        probe = await b.breaker_acquire("b", config=config, now=2.0)
        blocked = await b.breaker_acquire("b", config=config, now=3.0)
        await b.breaker_record(
            "b", config=config, permit=probe, outcome=BreakerOutcome.IGNORED, slow=False, now=3.0
        )
        again = await b.breaker_acquire("b", config=config, now=3.0)
        fresh = await b.breaker_acquire("b", config=config, now=8.5)  # 'again' outlived its lease
        late = await b.breaker_record(
            "b", config=config, permit=again, outcome=BreakerOutcome.FAILURE, slow=False, now=9.0
        )
        closed = await b.breaker_record(
            "b", config=config, permit=fresh, outcome=BreakerOutcome.SUCCESS, slow=False, now=9.0
        )
        return [
            probe.is_probe,
            blocked.allowed,
            blocked.retry_after,
            again.is_probe,
            fresh.is_probe,
            fresh.generation > again.generation,
            late,
            closed,
        ]

    out = run(scenario)
    assert out[:6] == [True, False, pytest.approx(4.0), True, True, True]
    assert out[6] is None
    assert out[7].to_state is BreakerState.CLOSED


def test_slow_successes_count_as_failures(run):
    config = BreakerConfig(failure_threshold=2)

    async def scenario(b: StateBackend) -> object:
        t = None
        for _ in range(2):
            p = await b.breaker_acquire("b", config=config, now=0.0)
            t = await b.breaker_record(
                "b", config=config, permit=p, outcome=BreakerOutcome.SUCCESS, slow=True, now=0.0
            )
        return t

    assert run(scenario).to_state is BreakerState.OPEN


def test_ratio_mode_opens_on_ratio_and_forgets_old_calls(run):
    config = BreakerConfig(mode="ratio", failure_ratio=0.5, minimum_calls=4, window=10)

    async def scenario(b: StateBackend) -> list[object]:
        out: list[object] = []
        for i, bad in enumerate([True, False, True]):
            p = await b.breaker_acquire("r", config=config, now=float(i))
            out.append(
                await b.breaker_record(
                    "r",
                    config=config,
                    permit=p,
                    outcome=BreakerOutcome.FAILURE if bad else BreakerOutcome.SUCCESS,
                    slow=False,
                    now=float(i),
                )
            )
        snap = await b.breaker_snapshot("r", config=config, now=2.0)
        out.append((snap.calls, snap.failures, snap.consecutive_failures))
        later = await b.breaker_snapshot("r", config=config, now=10.5)  # the first call slid out
        out.append((later.calls, later.failures))
        p = await b.breaker_acquire("r", config=config, now=10.5)
        out.append(
            await b.breaker_record(
                "r",
                config=config,
                permit=p,
                outcome=BreakerOutcome.FAILURE,
                slow=False,
                now=10.5,
            )
        )
        p = await b.breaker_acquire("r", config=config, now=10.6)
        out.append(
            await b.breaker_record(
                "r",
                config=config,
                permit=p,
                outcome=BreakerOutcome.FAILURE,
                slow=False,
                now=10.6,
            )
        )
        return out

    out = run(scenario)
    assert out[:3] == [None, None, None]
    assert out[3] == (3, 2, 1)
    assert out[4] == (2, 1)
    assert out[5] is None  # 3 calls: below the minimum
    assert out[6].to_state is BreakerState.OPEN  # 4 calls, 3 failures


def test_forced_open_rejects_without_retry_after_until_reset(run):
    async def scenario(b: StateBackend) -> list[object]:
        config = BreakerConfig()
        t = await b.breaker_force_open("b", now=0.0)
        permit = await b.breaker_acquire("b", config=config, now=1e6)
        again = await b.breaker_force_open("b", now=0.0)
        reset = await b.breaker_reset("b", now=2.0)
        after = await b.breaker_acquire("b", config=config, now=2.0)
        nothing = await b.breaker_reset("nothing", now=0.0)
        return [t, permit, again, reset, after.allowed, nothing]

    t, permit, again, reset, allowed, nothing = run(scenario)
    assert t.to_state is BreakerState.FORCED_OPEN
    assert permit == BreakerPermit(False, BreakerState.FORCED_OPEN, retry_after=None)
    assert again is None
    assert reset.to_state is BreakerState.CLOSED
    assert allowed
    assert nothing is None


# --- leases, seen ids, counters ------------------------------------------------------------------


def test_lease_fencing_renewal_expiry_and_owner_only_release(run):
    async def scenario(b: StateBackend) -> list[object]:
        t1 = await b.lock_acquire("l", owner="a", ttl=10, now=0.0)
        return [
            t1,
            await b.lock_acquire("l", owner="b", ttl=10, now=1.0),
            await b.lock_acquire("l", owner="a", ttl=10, now=5.0),  # renew: same token
            await b.lock_acquire("l", owner="b", ttl=10, now=12.0),  # renewed to 15
            await b.lock_release("l", owner="b"),
            await b.lock_extend("l", owner="a", ttl=10, now=14.0),
            await b.lock_extend("l", owner="a", ttl=10, now=30.0),  # lost at 24
            await b.lock_acquire("l", owner="b", ttl=10, now=30.0),
            await b.lock_release("l", owner="a", now=31.0),
            await b.lock_release("l", owner="b", now=50.0),  # expired at 40: reports the loss
            await b.lock_acquire("l", owner="c", ttl=1, now=60.0),
            await b.lock_release("l", owner="c"),
        ]

    out = run(scenario)
    assert out[0] is not None
    assert out[1:6] == [None, out[0], None, False, True]
    assert out[6] is False
    assert out[7] > out[0]
    assert out[8:10] == [False, False]
    assert out[10] > out[7]
    assert out[11] is True


def test_seen_ids_and_counters(run):
    async def scenario(b: StateBackend) -> list[object]:
        return [
            await b.seen_add("evt", ttl=60, now=0.0),
            await b.seen_add("evt", ttl=60, now=59.0),
            await b.seen_add("evt", ttl=60, now=60.0),
            await b.incr("c", ttl=10, now=0.0),
            await b.incr("c", 5, ttl=10, now=5.0),
            await b.counter_get("c", now=9.0),
            await b.counter_get("c", now=10.0),
            await b.incr("c", ttl=10, now=10.0),
            await b.counter_get("missing", now=0.0),
        ]

    assert run(scenario) == [True, False, True, 1, 6, 6, 0, 1, 0]


# --- the differential test: same operations, same answers ---------------------------------------

_CONFIGS = [
    BreakerConfig(failure_threshold=2, reset_timeout=3, half_open_max_calls=2, probe_lease=4),
    BreakerConfig(
        mode="ratio",
        failure_ratio=0.5,
        minimum_calls=3,
        window=5,
        reset_timeout=2,
        slow_call_ratio=0.8,
    ),
]
_op = st.one_of(
    st.tuples(
        st.just("acquire"),
        st.sampled_from(["{t}:a", "{t}:b"]),
        st.integers(1, 3),
        st.sampled_from([0.0, 0.3, 100.0]),
    ),
    st.tuples(st.just("many"), st.integers(1, 2), st.sampled_from([0.0, 100.0])),
    st.tuples(st.just("block"), st.sampled_from(["{t}:a", "{t}:b"]), st.floats(0.1, 3)),
    st.tuples(st.just("remaining"), st.sampled_from(["{t}:a", "{t}:b"])),
    st.tuples(
        st.just("call"),
        st.integers(0, 1),
        st.sampled_from(["success", "failure", "ignored", "slow", "keep"]),
    ),
    st.tuples(
        st.just("finish"),
        st.integers(0, 1),
        st.sampled_from(["success", "failure", "ignored", "slow"]),
    ),
    st.tuples(st.just("snapshot"), st.integers(0, 1)),
    st.tuples(st.just("reset"), st.integers(0, 1)),
    st.tuples(st.just("force"), st.integers(0, 1)),
    st.tuples(st.just("lock"), st.sampled_from(["x", "y"]), st.floats(0.5, 5)),
    st.tuples(st.just("unlock"), st.sampled_from(["x", "y"]), st.booleans()),
    st.tuples(st.just("extend"), st.sampled_from(["x", "y"])),
    st.tuples(st.just("seen"), st.sampled_from(["e1", "e2"])),
    st.tuples(st.just("incr"), st.integers(1, 4)),
    st.tuples(
        st.just("count"),
    ),
)
_steps = st.lists(
    st.tuples(st.one_of(st.floats(0, 1.5), st.just(6.0)), _op), min_size=1, max_size=40
)


async def _apply(b: StateBackend, steps: list[tuple[float, tuple[object, ...]]]) -> list[object]:
    """Run the steps; return every answer (permits held open by 'keep' are finished later)."""
    now = 0.0
    out: list[object] = []
    held: dict[int, list[BreakerPermit]] = {0: [], 1: []}
    for dt, op in steps:
        now += dt
        kind = op[0]
        if kind == "acquire":
            _, key, cost, max_wait = op
            out.append(
                await b.rate_acquire(
                    str(key), rate=2, burst=3, cost=float(cost), max_wait=float(max_wait), now=now
                )
            )
        elif kind == "many":
            _, cost, max_wait = op
            reqs = [RateRequest("{t}:a", 2, 3, float(cost)), RateRequest("{t}:b", 5, 1, 1.0)]
            out.append(await b.rate_acquire_many(reqs, max_wait=float(max_wait), now=now))
        elif kind == "block":
            out.append(await b.rate_block(str(op[1]), seconds=float(op[2]), now=now))
        elif kind == "remaining":
            out.append(await b.rate_remaining(str(op[1]), rate=2, burst=3, now=now))
        elif kind in ("call", "finish"):
            i, what = int(op[1]), str(op[2])
            config = _CONFIGS[i]
            if kind == "call":
                permit = await b.breaker_acquire(f"cb{i}", config=config, now=now)
                out.append(permit)
                if not permit.allowed:
                    continue
                if what == "keep":
                    held[i].append(permit)
                    continue
            elif held[i]:
                permit = held[i].pop(0)
            else:
                continue
            outcome = BreakerOutcome.SUCCESS if what == "slow" else BreakerOutcome(what)
            out.append(
                await b.breaker_record(
                    f"cb{i}",
                    config=config,
                    permit=permit,
                    outcome=outcome,
                    slow=what == "slow",
                    now=now,
                )
            )
        elif kind == "snapshot":
            i = int(op[1])
            out.append(await b.breaker_snapshot(f"cb{i}", config=_CONFIGS[i], now=now))
        elif kind == "reset":
            out.append(await b.breaker_reset(f"cb{op[1]}", now=now))
        elif kind == "force":
            out.append(await b.breaker_force_open(f"cb{op[1]}", now=now))
        elif kind == "lock":
            out.append(await b.lock_acquire("lease", owner=str(op[1]), ttl=float(op[2]), now=now))
        elif kind == "unlock":
            out.append(await b.lock_release("lease", owner=str(op[1]), now=now if op[2] else None))
        elif kind == "extend":
            out.append(await b.lock_extend("lease", owner=str(op[1]), ttl=2.0, now=now))
        elif kind == "seen":
            out.append(await b.seen_add(str(op[1]), ttl=2.0, now=now))
        elif kind == "incr":
            out.append(await b.incr("ctr", int(op[1]), ttl=3.0, now=now))
        else:
            out.append(await b.counter_get("ctr", now=now))
    return out


@pytest.mark.server
@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=_steps)
def test_redis_gives_the_same_answers_as_memory_for_any_operation_sequence(redis_server, steps):
    async def main() -> tuple[list[object], list[object]]:
        expected = await _apply(MemoryStateBackend(), steps)
        async with open_backend("redis", redis_server) as backend:
            got = await _apply(backend, steps)
        return expected, got

    expected, got = asyncio.run(main())
    assert got == expected

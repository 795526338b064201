"""The in-memory state backend: GCRA reservations, breaker steps, leases, seen ids, counters."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Coroutine
from typing import TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.state import (
    BreakerConfig,
    BreakerOutcome,
    BreakerState,
    MemoryStateBackend,
    RateRequest,
    StateBackend,
)
from connectors.state.base import BreakerPermit

T = TypeVar("T")


def sync(coro: Coroutine[object, object, T]) -> T:
    """Run a coroutine that never suspends (every memory-backend operation is one step)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    coro.close()
    raise AssertionError("the backend suspended")


@pytest.fixture
def backend() -> MemoryStateBackend:
    return MemoryStateBackend()


def test_memory_backend_satisfies_the_protocol(backend):
    assert isinstance(backend, StateBackend)


# --- GCRA --------------------------------------------------------------------------------------


def test_fresh_key_admits_its_burst_at_once_then_paces(backend):
    waits = [
        sync(backend.rate_acquire("k", rate=10, burst=3, cost=1, max_wait=60, now=0.0)).wait
        for _ in range(5)
    ]
    assert waits == pytest.approx([0.0, 0.0, 0.0, 0.1, 0.2])


def test_burst_one_allows_a_single_immediate_call(backend):
    first = sync(backend.rate_acquire("k", rate=2, burst=1, cost=1, max_wait=60, now=5.0))
    second = sync(backend.rate_acquire("k", rate=2, burst=1, cost=1, max_wait=60, now=5.0))
    assert (first.admitted, first.wait) == (True, 0.0)
    assert second.admitted
    assert second.wait == pytest.approx(0.5)


def test_capacity_refills_with_time(backend):
    for _ in range(3):
        sync(backend.rate_acquire("k", rate=1, burst=3, cost=1, max_wait=60, now=0.0))
    assert sync(backend.rate_remaining("k", rate=1, burst=3, now=0.0)) == pytest.approx(0.0)
    assert sync(backend.rate_remaining("k", rate=1, burst=3, now=2.0)) == pytest.approx(2.0)
    assert sync(backend.rate_remaining("k", rate=1, burst=3, now=10.0)) == pytest.approx(3.0)
    assert sync(backend.rate_remaining("unused", rate=1, burst=3, now=0.0)) == 3.0


def test_a_wait_past_max_wait_reserves_nothing(backend):
    sync(backend.rate_acquire("k", rate=1, burst=1, cost=1, max_wait=60, now=0.0))
    refused = sync(backend.rate_acquire("k", rate=1, burst=1, cost=1, max_wait=0.5, now=0.0))
    assert not refused.admitted
    assert refused.wait == pytest.approx(1.0)
    # Nothing was reserved: the next caller still waits 1 s, not 2 s.
    again = sync(backend.rate_acquire("k", rate=1, burst=1, cost=1, max_wait=60, now=0.0))
    assert again.admitted
    assert again.wait == pytest.approx(1.0)


def test_weighted_cost_spends_more_units(backend):
    sync(backend.rate_acquire("k", rate=10, burst=5, cost=5, max_wait=60, now=0.0))
    nxt = sync(backend.rate_acquire("k", rate=10, burst=5, cost=2, max_wait=60, now=0.0))
    assert nxt.wait == pytest.approx(0.2)


def test_block_admits_nothing_until_it_ends_then_the_burst(backend):
    sync(backend.rate_block("k", seconds=30, now=0.0))
    assert sync(backend.rate_remaining("k", rate=1, burst=2, now=1.0)) == 0.0
    first = sync(backend.rate_acquire("k", rate=1, burst=2, cost=1, max_wait=60, now=1.0))
    assert first.wait == pytest.approx(29.0)
    second = sync(backend.rate_acquire("k", rate=1, burst=2, cost=1, max_wait=60, now=1.0))
    assert second.wait == pytest.approx(29.0)  # the burst of 2 is available once unblocked
    third = sync(backend.rate_acquire("k", rate=1, burst=2, cost=1, max_wait=60, now=1.0))
    assert third.wait == pytest.approx(30.0)


def test_acquire_many_reserves_every_key_at_one_time_or_none(backend):
    sync(backend.rate_acquire("slow", rate=1, burst=1, cost=1, max_wait=60, now=0.0))
    both = [RateRequest("fast", rate=100, burst=1), RateRequest("slow", rate=1, burst=1)]
    refused = sync(backend.rate_acquire_many(both, max_wait=0.5, now=0.0))
    assert not refused.admitted
    assert sync(backend.rate_remaining("fast", rate=100, burst=1, now=0.0)) == 1.0
    ok = sync(backend.rate_acquire_many(both, max_wait=60, now=0.0))
    assert ok.admitted
    assert ok.wait == pytest.approx(1.0)
    # "fast" was reserved at t=1 (the common time), so it is not usable again before 1.01.
    assert sync(
        backend.rate_acquire("fast", rate=100, burst=1, cost=1, max_wait=60, now=0.0)
    ).wait == (pytest.approx(1.01))


def test_acquire_many_adds_up_repeated_keys(backend):
    reqs = [RateRequest("k", rate=10, burst=2), RateRequest("k", rate=10, burst=2)]
    assert sync(backend.rate_acquire_many(reqs, max_wait=60, now=0.0)).wait == 0.0
    assert sync(backend.rate_remaining("k", rate=10, burst=2, now=0.0)) == pytest.approx(0.0)


@given(
    rate=st.floats(0.5, 100),
    burst=st.integers(1, 10),
    arrivals=st.lists(st.floats(0, 5), min_size=1, max_size=60),
)
def test_admissions_never_exceed_burst_plus_rate_times_span(rate, burst, arrivals):
    backend = MemoryStateBackend()
    starts = []
    for now in sorted(arrivals):
        d = sync(backend.rate_acquire("k", rate=rate, burst=burst, cost=1, max_wait=1e9, now=now))
        starts.append(now + d.wait)
    starts.sort()
    # In any window [a, b] at most burst + rate*(b-a) admissions begin (token bucket bound).
    for i, a in enumerate(starts):
        for j in range(i, len(starts)):
            assert j - i + 1 <= burst + rate * (starts[j] - a) + 1e-6


def test_expired_rate_entries_are_purged_lazily(backend):
    for i in range(5000):
        sync(backend.rate_acquire(f"k{i}", rate=100, burst=1, cost=1, max_wait=1, now=float(i)))
    assert len(backend._rates) < 2100


# --- breaker steps (the policy-level behaviour is in tests/resilience/test_breaker.py) ----------


def test_breaker_success_on_clean_consecutive_breaker_need_not_be_reported(backend):
    config = BreakerConfig(failure_threshold=2)
    permit = sync(backend.breaker_acquire("b", config=config, now=0.0))
    assert permit.allowed
    assert not permit.report_success
    failed = sync(backend.breaker_acquire("b", config=config, now=0.0))
    sync(
        backend.breaker_record(
            "b", config=config, permit=failed, outcome=BreakerOutcome.FAILURE, slow=False, now=0.0
        )
    )
    dirty = sync(backend.breaker_acquire("b", config=config, now=0.0))
    assert dirty.report_success
    ratio = BreakerConfig(mode="ratio")
    assert sync(backend.breaker_acquire("fresh", config=ratio, now=0.0)).report_success


def test_breaker_reports_from_an_older_generation_are_ignored(backend):
    config = BreakerConfig(failure_threshold=1, reset_timeout=10)
    stale = sync(backend.breaker_acquire("b", config=config, now=0.0))
    opener = sync(backend.breaker_acquire("b", config=config, now=0.0))
    sync(
        backend.breaker_record(
            "b", config=config, permit=opener, outcome=BreakerOutcome.FAILURE, slow=False, now=0.0
        )
    )
    sync(backend.breaker_reset("b", now=1.0))
    # The stale permit's failure belongs to the previous epoch: it must not reopen the breaker.
    assert (
        sync(
            backend.breaker_record(
                "b",
                config=config,
                permit=stale,
                outcome=BreakerOutcome.FAILURE,
                slow=False,
                now=1.0,
            )
        )
        is None
    )
    snap = sync(backend.breaker_snapshot("b", config=config, now=1.0))
    assert snap.state is BreakerState.CLOSED


def test_breaker_probe_slot_is_freed_after_its_lease(backend):
    config = BreakerConfig(failure_threshold=1, reset_timeout=1, probe_lease=5)
    p = sync(backend.breaker_acquire("b", config=config, now=0.0))
    sync(
        backend.breaker_record(
            "b", config=config, permit=p, outcome=BreakerOutcome.FAILURE, slow=False, now=0.0
        )
    )
    probe = sync(backend.breaker_acquire("b", config=config, now=2.0))
    assert probe.is_probe
    assert not sync(backend.breaker_acquire("b", config=config, now=3.0)).allowed
    # The probe's caller died: after the lease another probe is admitted, the old one is stale.
    fresh = sync(backend.breaker_acquire("b", config=config, now=7.5))
    assert fresh.allowed
    assert fresh.is_probe
    assert (
        sync(
            backend.breaker_record(
                "b",
                config=config,
                permit=probe,
                outcome=BreakerOutcome.FAILURE,
                slow=False,
                now=8.0,
            )
        )
        is None
    )
    t = sync(
        backend.breaker_record(
            "b", config=config, permit=fresh, outcome=BreakerOutcome.SUCCESS, slow=False, now=8.0
        )
    )
    assert t is not None
    assert t.to_state is BreakerState.CLOSED


def test_forced_open_rejects_without_retry_after_until_reset(backend):
    config = BreakerConfig()
    t = sync(backend.breaker_force_open("b", now=0.0))
    assert t is not None
    assert t.to_state is BreakerState.FORCED_OPEN
    permit = sync(backend.breaker_acquire("b", config=config, now=1e6))
    assert not permit.allowed
    assert permit.retry_after is None
    assert sync(backend.breaker_force_open("b", now=0.0)) is None
    sync(backend.breaker_reset("b", now=2.0))
    assert sync(backend.breaker_acquire("b", config=config, now=2.0)).allowed


def test_reset_of_unknown_or_closed_breaker_is_no_transition(backend):
    assert sync(backend.breaker_reset("nothing", now=0.0)) is None
    snap = sync(backend.breaker_snapshot("nothing", config=BreakerConfig(), now=0.0))
    assert snap.state is BreakerState.CLOSED
    assert snap.calls == 0


# --- leases ------------------------------------------------------------------------------------


def test_lock_gives_increasing_fencing_tokens_and_excludes_others(backend):
    t1 = sync(backend.lock_acquire("l", owner="a", ttl=10, now=0.0))
    assert t1 is not None
    assert sync(backend.lock_acquire("l", owner="b", ttl=10, now=1.0)) is None
    assert sync(backend.lock_release("l", owner="b")) is False
    assert sync(backend.lock_release("l", owner="a", now=2.0)) is True
    t2 = sync(backend.lock_acquire("l", owner="b", ttl=10, now=3.0))
    assert t2 is not None
    assert t2 > t1


def test_lock_owner_renews_and_keeps_its_token(backend):
    t1 = sync(backend.lock_acquire("l", owner="a", ttl=10, now=0.0))
    assert sync(backend.lock_acquire("l", owner="a", ttl=10, now=5.0)) == t1
    assert sync(backend.lock_acquire("l", owner="b", ttl=10, now=12.0)) is None  # renewed to 15


def test_lock_expires_after_its_ttl_and_the_old_owner_loses_it(backend):
    t1 = sync(backend.lock_acquire("l", owner="a", ttl=10, now=0.0))
    assert sync(backend.lock_extend("l", owner="a", ttl=10, now=10.0)) is False
    t2 = sync(backend.lock_acquire("l", owner="b", ttl=10, now=10.0))
    assert t2 is not None
    assert t1 is not None
    assert t2 > t1
    assert sync(backend.lock_release("l", owner="a", now=11.0)) is False


def test_lock_release_after_expiry_reports_the_loss(backend):
    sync(backend.lock_acquire("l", owner="a", ttl=1, now=0.0))
    assert sync(backend.lock_release("l", owner="a", now=5.0)) is False


def test_lock_extend_keeps_a_live_lease(backend):
    sync(backend.lock_acquire("l", owner="a", ttl=10, now=0.0))
    assert sync(backend.lock_extend("l", owner="a", ttl=10, now=9.0)) is True
    assert sync(backend.lock_acquire("l", owner="b", ttl=10, now=15.0)) is None
    assert sync(backend.lock_extend("l", owner="b", ttl=10, now=15.0)) is False


def test_fencing_tokens_increase_across_keys_and_expiry(backend):
    tokens = []
    for i in range(20):
        token = sync(backend.lock_acquire("l", owner=f"o{i}", ttl=1, now=float(i * 2)))
        assert token is not None
        tokens.append(token)
    assert tokens == sorted(tokens)
    assert len(set(tokens)) == len(tokens)


def test_concurrent_threads_get_exactly_one_lease(backend):
    winners = []
    barrier = threading.Barrier(8)

    def contend(owner: str) -> None:
        barrier.wait()
        if sync(backend.lock_acquire("l", owner=owner, ttl=10, now=0.0)) is not None:
            winners.append(owner)

    threads = [threading.Thread(target=contend, args=(f"t{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1


# --- seen ids and counters ---------------------------------------------------------------------


def test_seen_add_is_true_only_the_first_time_within_ttl(backend):
    assert sync(backend.seen_add("evt-1", ttl=60, now=0.0)) is True
    assert sync(backend.seen_add("evt-1", ttl=60, now=59.0)) is False
    assert sync(backend.seen_add("evt-1", ttl=60, now=60.0)) is True


def test_seen_ids_are_purged_when_expired(backend):
    for i in range(5000):
        sync(backend.seen_add(f"e{i}", ttl=1, now=float(i)))
    assert len(backend._seen) < 2100


def test_counters_add_up_and_restart_after_ttl(backend):
    assert sync(backend.incr("c", ttl=10, now=0.0)) == 1
    assert sync(backend.incr("c", 5, ttl=10, now=5.0)) == 6
    assert sync(backend.counter_get("c", now=9.0)) == 6
    assert sync(backend.counter_get("c", now=10.0)) == 0
    assert sync(backend.incr("c", ttl=10, now=10.0)) == 1
    assert sync(backend.counter_get("missing", now=0.0)) == 0


def test_counters_are_safe_across_threads(backend):
    def work() -> None:
        for _ in range(2000):
            sync(backend.incr("c", ttl=1e9, now=0.0))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sync(backend.counter_get("c", now=0.0)) == 8000


def test_repr_shows_sizes_only(backend):
    sync(backend.seen_add("secret-looking-id", ttl=1, now=0.0))
    assert "secret-looking-id" not in repr(backend)


@pytest.mark.parametrize("state", list(BreakerState))
@pytest.mark.parametrize("retry_after", [None, 0.0, 2.5])
def test_a_refusal_permit_equals_the_constructed_one(state, retry_after):
    made = BreakerPermit.refusal(state, retry_after)
    assert made == BreakerPermit(False, state, retry_after=retry_after)
    assert hash(made) == hash(BreakerPermit(False, state, retry_after=retry_after))
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.allowed = True  # type: ignore[misc]

"""The circuit breaker: transitions in both modes, slow calls, half-open probes, a model check."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TypeVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from connectors.clock import FakeClock
from connectors.errors import (
    AuthenticationFailed,
    BulkheadFull,
    CircuitOpen,
    ConnectionFailed,
    DeadlineExceeded,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    Timeout,
)
from connectors.resilience import (
    BreakerPolicy,
    BreakerTransitionEvent,
    CircuitBreaker,
    ResiliencePolicy,
    RetryPolicy,
    outcome_of,
)
from connectors.state import BreakerOutcome, BreakerState, MemoryStateBackend
from tests.resilience._support import Recorder, ctx, pipeline

T = TypeVar("T")


def run(coro: Coroutine[object, object, T]) -> T:
    return asyncio.run(coro)


def breaker(clock: FakeClock, **policy: object) -> CircuitBreaker:
    return CircuitBreaker(BreakerPolicy(**policy), MemoryStateBackend(), clock)  # type: ignore[arg-type]


async def fail(cb: CircuitBreaker, key: str = "k", *, slow: float | None = None) -> object:
    permit = await cb.check(key)
    return await cb.record(key, permit, BreakerOutcome.FAILURE, duration=slow)


async def succeed(cb: CircuitBreaker, key: str = "k", *, duration: float | None = None) -> object:
    permit = await cb.check(key)
    return await cb.record(key, permit, BreakerOutcome.SUCCESS, duration=duration)


# --- classification ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (None, BreakerOutcome.SUCCESS),
        (ServiceUnavailable("503"), BreakerOutcome.FAILURE),
        (ConnectionFailed("refused"), BreakerOutcome.FAILURE),
        (Timeout("slow"), BreakerOutcome.FAILURE),
        (NotFound("404"), BreakerOutcome.SUCCESS),
        (AuthenticationFailed("401"), BreakerOutcome.SUCCESS),
        (RateLimited(), BreakerOutcome.IGNORED),
        (CircuitOpen(), BreakerOutcome.IGNORED),
        (BulkheadFull("full"), BreakerOutcome.IGNORED),
        (DeadlineExceeded(), BreakerOutcome.IGNORED),
        (ValueError("bug"), BreakerOutcome.IGNORED),
        (asyncio.CancelledError(), BreakerOutcome.IGNORED),
    ],
)
def test_what_counts_against_the_provider(error, outcome):
    assert outcome_of(error) is outcome


# --- consecutive mode --------------------------------------------------------------------------


def test_consecutive_failures_open_then_half_open_probe_closes():
    async def main() -> None:
        clock = FakeClock()
        cb = breaker(clock, failure_threshold=3, reset_timeout=10)
        assert await fail(cb) is None
        assert await fail(cb) is None
        opened = await fail(cb)
        assert opened.from_state is BreakerState.CLOSED
        assert opened.to_state is BreakerState.OPEN
        with pytest.raises(CircuitOpen) as info:
            await cb.check("k")
        assert info.value.retry_after == pytest.approx(10.0)
        clock.advance(4)
        with pytest.raises(CircuitOpen) as info:
            await cb.check("k")
        assert info.value.retry_after == pytest.approx(6.0)
        clock.advance(6)
        probe = await cb.check("k")
        assert probe.is_probe
        assert probe.transition.to_state is BreakerState.HALF_OPEN
        closed = await cb.record("k", probe, BreakerOutcome.SUCCESS)
        assert closed.to_state is BreakerState.CLOSED
        assert (await cb.snapshot("k")).state is BreakerState.CLOSED

    run(main())


def test_a_success_resets_the_consecutive_count():
    async def main() -> None:
        cb = breaker(FakeClock(), failure_threshold=3)
        await fail(cb)
        await fail(cb)
        await succeed(cb)
        await fail(cb)
        await fail(cb)
        assert (await cb.snapshot("k")).state is BreakerState.CLOSED
        assert (await fail(cb)).to_state is BreakerState.OPEN

    run(main())


def test_failed_probe_reopens_for_another_reset_timeout():
    async def main() -> None:
        clock = FakeClock()
        cb = breaker(clock, failure_threshold=1, reset_timeout=5)
        await fail(cb)
        clock.advance(5)
        probe = await cb.check("k")
        t = await cb.record("k", probe, BreakerOutcome.FAILURE)
        assert (t.from_state, t.to_state) == (BreakerState.HALF_OPEN, BreakerState.OPEN)
        snap = await cb.snapshot("k")
        assert snap.state is BreakerState.OPEN
        assert snap.opened_at == clock.monotonic()
        assert snap.next_probe_at == clock.monotonic() + 5

    run(main())


def test_ignored_probe_gives_its_slot_back():
    async def main() -> None:
        clock = FakeClock()
        cb = breaker(clock, failure_threshold=1, reset_timeout=5)
        await fail(cb)
        clock.advance(5)
        probe = await cb.check("k")
        with pytest.raises(CircuitOpen):
            await cb.check("k")
        await cb.record_error("k", probe, asyncio.CancelledError())
        again = await cb.check("k")
        assert again.is_probe

    run(main())


def test_slow_successes_count_as_failures_in_consecutive_mode():
    async def main() -> None:
        cb = breaker(FakeClock(), failure_threshold=2, slow_call_duration=1.0)
        await succeed(cb, duration=0.5)
        await succeed(cb, duration=1.5)
        assert (await succeed(cb, duration=2.0)).to_state is BreakerState.OPEN

    run(main())


def test_manual_reset_and_force_open():
    async def main() -> None:
        cb = breaker(FakeClock(), failure_threshold=1)
        await fail(cb)
        assert (await cb.reset("k")).to_state is BreakerState.CLOSED
        await succeed(cb)
        assert (await cb.force_open("k")).to_state is BreakerState.FORCED_OPEN
        with pytest.raises(CircuitOpen) as info:
            await cb.check("k")
        assert info.value.retry_after is None
        await cb.reset("k")
        await succeed(cb)

    run(main())


# --- ratio mode --------------------------------------------------------------------------------


def test_ratio_mode_waits_for_minimum_calls_then_opens_on_the_ratio():
    async def main() -> None:
        cb = breaker(FakeClock(), mode="ratio", failure_ratio=0.5, minimum_calls=10)
        for _ in range(5):
            await succeed(cb)
        for _ in range(4):
            assert await fail(cb) is None  # 4/9: below minimum calls anyway
        t = await fail(cb)  # 5/10 = 0.5
        assert t.to_state is BreakerState.OPEN

    run(main())


def test_ratio_mode_stays_closed_below_the_ratio():
    async def main() -> None:
        cb = breaker(FakeClock(), mode="ratio", failure_ratio=0.5, minimum_calls=4)
        for _ in range(30):
            await succeed(cb)
            await succeed(cb)
            assert await fail(cb) is None
        snap = await cb.snapshot("k")
        assert snap.state is BreakerState.CLOSED
        assert snap.calls == 90
        assert snap.failures == 30

    run(main())


def test_ratio_window_forgets_old_failures():
    async def main() -> None:
        clock = FakeClock()
        cb = breaker(clock, mode="ratio", failure_ratio=0.5, minimum_calls=4, window=10)
        for _ in range(3):
            await fail(cb)
        clock.advance(11)
        assert (await cb.snapshot("k")).calls == 0
        await fail(cb)
        for _ in range(3):
            assert await succeed(cb) is None
        assert (await cb.snapshot("k")).state is BreakerState.CLOSED

    run(main())


def test_ratio_window_slides_bucket_by_bucket():
    async def main() -> None:
        clock = FakeClock(start=0.0)
        cb = breaker(clock, mode="ratio", minimum_calls=100, window=10)
        await fail(cb)  # bucket [0, 1)
        clock.advance(5)
        await succeed(cb)  # bucket [5, 6)
        assert (await cb.snapshot("k")).calls == 2
        clock.advance(5.5)  # t=10.5: the first bucket slid out
        snap = await cb.snapshot("k")
        assert (snap.calls, snap.failures) == (1, 0)

    run(main())


def test_ratio_mode_opens_on_slow_call_ratio():
    async def main() -> None:
        cb = breaker(
            FakeClock(),
            mode="ratio",
            minimum_calls=4,
            slow_call_duration=1.0,
            slow_call_ratio=0.5,
        )
        await succeed(cb, duration=0.1)
        await succeed(cb, duration=0.1)
        await succeed(cb, duration=3.0)
        t = await succeed(cb, duration=3.0)
        assert t.to_state is BreakerState.OPEN

    run(main())


def test_ratio_mode_half_open_and_close():
    async def main() -> None:
        clock = FakeClock()
        cb = breaker(clock, mode="ratio", minimum_calls=2, failure_ratio=1.0, reset_timeout=1)
        await fail(cb)
        assert (await fail(cb)).to_state is BreakerState.OPEN
        clock.advance(1)
        probe = await cb.check("k")
        assert (await cb.record("k", probe, BreakerOutcome.SUCCESS)).to_state is (
            BreakerState.CLOSED
        )
        assert (await cb.snapshot("k")).calls == 0

    run(main())


# --- half-open under concurrency (through the pipeline) -----------------------------------------


@pytest.mark.parametrize("probes", [1, 3])
def test_half_open_admits_exactly_n_probes_among_50_concurrent_callers(probes):
    async def main() -> None:
        clock = FakeClock()
        recorder = Recorder()
        policy = ResiliencePolicy(
            retry=RetryPolicy(max_attempts=1),
            breaker=BreakerPolicy(
                failure_threshold=2, reset_timeout=10, half_open_max_calls=probes
            ),
        )
        p = pipeline(policy, clock=clock, listener=recorder)
        calls = 0

        async def broken(attempt: object) -> str:
            raise ServiceUnavailable("503")

        async def slow_ok(attempt: object) -> str:
            nonlocal calls
            calls += 1
            await clock.sleep(1.0)
            return "ok"

        for _ in range(2):
            with pytest.raises(ServiceUnavailable):
                await p.execute(broken, ctx=ctx(), operation="op", idempotent=True)
        clock.advance(10)
        results = await asyncio.gather(
            *(p.execute(slow_ok, ctx=ctx(), operation="op", idempotent=True) for _ in range(50)),
            return_exceptions=True,
        )
        assert calls == probes
        assert results.count("ok") == probes
        rejected = [r for r in results if isinstance(r, CircuitOpen)]
        assert len(rejected) == 50 - probes
        assert all(r.retry_after is not None and r.retry_after > 0 for r in rejected)
        assert rejected[0].tenant == "acme"
        assert rejected[0].connector == "svc"
        transitions = [(e.from_state, e.to_state) for e in recorder.of(BreakerTransitionEvent)]
        assert transitions == [
            (BreakerState.CLOSED, BreakerState.OPEN),
            (BreakerState.OPEN, BreakerState.HALF_OPEN),
            (BreakerState.HALF_OPEN, BreakerState.CLOSED),
        ]
        assert (await p.breaker_snapshot("acme")).state is BreakerState.CLOSED

    run(main())


def test_permanent_errors_never_trip_the_breaker():
    async def main() -> None:
        p = pipeline(
            ResiliencePolicy(
                retry=RetryPolicy(max_attempts=1), breaker=BreakerPolicy(failure_threshold=1)
            )
        )

        async def missing(attempt: object) -> str:
            raise NotFound("no such record")

        async def throttled(attempt: object) -> str:
            raise RateLimited(retry_after=None)

        for fn in (missing, throttled) * 5:
            with pytest.raises((NotFound, RateLimited)):
                await p.execute(fn, ctx=ctx(), operation="op", idempotent=True)
        assert (await p.breaker_snapshot("acme")).state is BreakerState.CLOSED

    run(main())


# --- model-based check -------------------------------------------------------------------------

THRESHOLD = 3
RESET = 10.0
PROBES = 2


def step(coro: Coroutine[object, object, T]) -> T:
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    raise AssertionError("the memory backend suspended")


class BreakerMachine(RuleBasedStateMachine):
    """The consecutive-mode breaker against a small model of its documented behaviour."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(start=0.0)
        self.cb = CircuitBreaker(
            BreakerPolicy(
                failure_threshold=THRESHOLD, reset_timeout=RESET, half_open_max_calls=PROBES
            ),
            MemoryStateBackend(),
            self.clock,
            probe_lease=1e9,
        )
        # the model
        self.state = BreakerState.CLOSED
        self.consecutive = 0
        self.open_until = 0.0
        self.in_flight = 0
        self.successes = 0
        self.epoch = 0
        self.outstanding: list[tuple[object, int, bool]] = []  # (permit, epoch, probe)

    def _open(self) -> None:
        self.state = BreakerState.OPEN
        self.open_until = self.clock.monotonic() + RESET
        self.consecutive = self.in_flight = self.successes = 0
        self.epoch += 1

    def _close(self) -> None:
        self.state = BreakerState.CLOSED
        self.consecutive = self.in_flight = self.successes = 0
        self.epoch += 1

    @rule()
    def acquire(self) -> None:
        now = self.clock.monotonic()
        if self.state is BreakerState.OPEN and now >= self.open_until:
            self.state = BreakerState.HALF_OPEN
            self.in_flight = self.successes = 0
            self.epoch += 1
        permit = step(self.cb.acquire("k"))
        if self.state is BreakerState.CLOSED:
            assert permit.allowed
            assert not permit.is_probe
            self.outstanding.append((permit, self.epoch, False))
        elif self.state is BreakerState.OPEN:
            assert not permit.allowed
            assert permit.retry_after == pytest.approx(self.open_until - now)
        elif self.in_flight + self.successes < PROBES:
            assert permit.allowed
            assert permit.is_probe
            self.in_flight += 1
            self.outstanding.append((permit, self.epoch, True))
        else:
            assert not permit.allowed

    @precondition(lambda self: self.outstanding)
    @rule(index=st.integers(0, 100), outcome=st.sampled_from(list(BreakerOutcome)))
    def report(self, index: int, outcome: BreakerOutcome) -> None:
        permit, epoch, probe = self.outstanding.pop(index % len(self.outstanding))
        transition = step(self.cb.record("k", permit, outcome))  # type: ignore[arg-type]
        expected = None
        if epoch == self.epoch:
            if outcome is BreakerOutcome.IGNORED:
                if probe:
                    self.in_flight -= 1
            elif self.state is BreakerState.CLOSED:
                if outcome is BreakerOutcome.FAILURE:
                    self.consecutive += 1
                    if self.consecutive >= THRESHOLD:
                        expected = (BreakerState.CLOSED, BreakerState.OPEN)
                        self._open()
                else:
                    self.consecutive = 0
            elif self.state is BreakerState.HALF_OPEN and probe:
                self.in_flight -= 1
                if outcome is BreakerOutcome.FAILURE:
                    expected = (BreakerState.HALF_OPEN, BreakerState.OPEN)
                    self._open()
                else:
                    self.successes += 1
                    if self.successes >= PROBES:
                        expected = (BreakerState.HALF_OPEN, BreakerState.CLOSED)
                        self._close()
        got = None if transition is None else (transition.from_state, transition.to_state)
        assert got == expected

    @rule(seconds=st.sampled_from([0.5, 3.0, RESET, 25.0]))
    def wait(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def reset(self) -> None:
        step(self.cb.reset("k"))
        if self.state is not BreakerState.CLOSED:
            self._close()
        else:
            self.consecutive = 0

    @invariant()
    def probes_never_exceed_the_limit(self) -> None:
        assert self.in_flight + self.successes <= PROBES
        snap = step(self.cb.snapshot("k"))
        if self.state is BreakerState.HALF_OPEN:
            assert snap.half_open_in_flight == self.in_flight


BreakerMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_breaker_matches_its_model = BreakerMachine.TestCase

"""The pipeline: order, deadline, retry rules, timeouts, context, tenant isolation, events."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.clock import FakeClock
from connectors.context import Deadline
from connectors.errors import (
    AmbiguousOutcome,
    CircuitOpen,
    ConnectionFailed,
    ConnectorError,
    DeadlineExceeded,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    Timeout,
)
from connectors.resilience import (
    Attempt,
    BreakerPolicy,
    BreakerTransitionEvent,
    RateLimit,
    ResiliencePolicy,
    RetryEvent,
    RetryPolicy,
    set_testing,
)
from connectors.state import BreakerState, MemoryStateBackend
from tests.resilience._support import Recorder, ctx, ok, pipeline, script, waits_on


@pytest.fixture(autouse=True)
def _real_waits() -> Iterator[None]:
    with waits_on():
        yield


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


# --- the deadline is never exceeded ------------------------------------------------------------

KINDS = ["ok", "unavailable", "rate_limited", "connection", "ambiguous", "slow"]


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(
            st.floats(0.0, 20.0),
            st.sampled_from(KINDS),
            st.one_of(st.none(), st.floats(0.0, 50.0)),
        ),
        min_size=1,
        max_size=8,
    ),
    attempt_timeout=st.floats(0.5, 30.0),
    deadline=st.floats(0.5, 60.0),
    max_attempts=st.integers(1, 6),
    enforce=st.booleans(),
    via_policy=st.booleans(),
    idempotent=st.booleans(),
)
def test_the_deadline_is_never_exceeded_and_attempts_are_bounded(
    steps, attempt_timeout, deadline, max_attempts, enforce, via_policy, idempotent
):
    async def main() -> None:
        clock = FakeClock(start=0.0)
        policy = ResiliencePolicy(
            retry=RetryPolicy(max_attempts=max_attempts, base_delay=0.5, max_delay=8.0),
            breaker=BreakerPolicy(failure_threshold=100),
            attempt_timeout=attempt_timeout,
            deadline=deadline if via_policy else None,
        )
        p = pipeline(policy, clock=clock)
        call_ctx = ctx() if via_policy else ctx(deadline=Deadline.after(deadline, clock))
        attempts: list[Attempt] = []

        async def fn(attempt: Attempt) -> str:
            attempts.append(attempt)
            duration, kind, retry_after = steps[min(attempt.number, len(steps)) - 1]
            assert attempt.timeout <= attempt_timeout
            assert clock.monotonic() + attempt.timeout <= deadline + 1e-9
            if not enforce and (kind == "slow" or duration >= attempt.timeout):
                await clock.sleep(attempt.timeout)
                raise Timeout("transport timeout", request_sent=True)
            await clock.sleep(duration)
            if kind == "unavailable":
                raise ServiceUnavailable("503", retry_after=retry_after)
            if kind == "rate_limited":
                raise RateLimited(retry_after=retry_after)
            if kind == "connection":
                raise ConnectionFailed("refused")
            if kind == "ambiguous":
                raise AmbiguousOutcome("connection reset")
            if kind == "slow":
                await clock.sleep(1e6)
            return "ok"

        failure: ConnectorError | None = None
        try:
            await p.execute(
                fn, ctx=call_ctx, operation="op", idempotent=idempotent, enforce_timeout=enforce
            )
        except ConnectorError as err:
            failure = err
        if failure is not None:
            assert (failure.tenant, failure.connector) == ("acme", "svc")
        assert clock.monotonic() <= deadline + 1e-9
        assert 1 <= len(attempts) <= max_attempts
        assert [a.number for a in attempts] == list(range(1, len(attempts) + 1))

    run(main())


def test_deadline_passed_before_the_first_attempt_raises_deadline_exceeded_with_context():
    async def main() -> None:
        clock = FakeClock()
        p = pipeline(clock=clock)
        expired = ctx(deadline=Deadline(clock.monotonic() - 1, clock))
        with pytest.raises(DeadlineExceeded) as info:
            await p.execute(ok, ctx=expired, operation="read", idempotent=True)
        err = info.value
        assert (err.connector, err.tenant, err.operation, err.request_id) == (
            "svc",
            "acme",
            "read",
            expired.request_id,
        )

    run(main())


def test_attempt_cut_short_by_the_deadline_raises_deadline_exceeded_chained_to_the_timeout():
    async def main() -> None:
        clock = FakeClock(start=0.0)
        p = pipeline(ResiliencePolicy(deadline=3.0, attempt_timeout=10.0), clock=clock)
        log: list[Attempt] = []
        fn = script(clock, [(100.0, None)], log)
        with pytest.raises(DeadlineExceeded) as info:
            await p.execute(fn, ctx=ctx(), operation="op", idempotent=True)
        assert isinstance(info.value.__cause__, Timeout)
        assert clock.monotonic() == pytest.approx(3.0)
        assert log[0].timeout == pytest.approx(3.0)
        # A deadline-cut attempt says nothing about the provider: the breaker did not count it.
        snap = await p.breaker_snapshot("acme")
        assert snap.consecutive_failures == 0

    run(main())


def test_policy_deadline_and_context_deadline_combine_to_the_earliest():
    async def main() -> None:
        clock = FakeClock(start=0.0)
        p = pipeline(ResiliencePolicy(deadline=5.0), clock=clock)
        seen: list[Attempt] = []

        async def fn(attempt: Attempt) -> str:
            seen.append(attempt)
            return "ok"

        await p.execute(
            fn, ctx=ctx(deadline=Deadline.after(2.0, clock)), operation="op", idempotent=True
        )
        await p.execute(
            fn, ctx=ctx(deadline=Deadline.after(9.0, clock)), operation="op", idempotent=True
        )
        await p.execute(fn, ctx=ctx(), operation="op", idempotent=True)
        assert [a.timeout for a in seen] == pytest.approx([2.0, 5.0, 5.0])
        assert seen[0].ctx.deadline.at == pytest.approx(2.0)
        assert seen[1].ctx.deadline.at == pytest.approx(5.0)  # the attempt sees the earliest
        assert seen[2].ctx.deadline.at == pytest.approx(5.0)

    run(main())


# --- what is retried ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error", [AmbiguousOutcome("reset after send"), Timeout("read timeout", request_sent=True)]
)
def test_non_idempotent_call_is_not_retried_after_an_ambiguous_failure(error):
    async def main() -> None:
        clock = FakeClock()
        p = pipeline(clock=clock)
        log: list[Attempt] = []
        with pytest.raises(type(error)):
            await p.execute(
                script(clock, [(0.0, error), (0.0, None)], log),
                ctx=ctx(),
                operation="create",
                idempotent=False,
            )
        assert len(log) == 1

    run(main())


def test_non_idempotent_call_is_retried_after_connection_failed():
    async def main() -> None:
        clock = FakeClock()
        p = pipeline(clock=clock)
        log: list[Attempt] = []
        fn = script(clock, [(0.0, ConnectionFailed("refused")), (0.0, None)], log)
        assert await p.execute(fn, ctx=ctx(), operation="create", idempotent=False) == "ok"
        assert len(log) == 2

    run(main())


def test_idempotent_call_is_retried_after_an_ambiguous_failure():
    async def main() -> None:
        clock = FakeClock()
        p = pipeline(clock=clock)
        log: list[Attempt] = []
        fn = script(clock, [(0.0, AmbiguousOutcome("lost")), (0.0, None)], log)
        assert await p.execute(fn, ctx=ctx(), operation="get", idempotent=True) == "ok"

    run(main())


def test_permanent_errors_are_raised_at_once_with_context():
    async def main() -> None:
        clock = FakeClock()
        p = pipeline(clock=clock)
        log: list[Attempt] = []
        call = ctx()
        with pytest.raises(NotFound) as info:
            await p.execute(
                script(clock, [(0.0, NotFound("no such lead"))], log),
                ctx=call,
                operation="get",
                idempotent=True,
            )
        assert len(log) == 1
        assert info.value.request_id == call.request_id
        assert info.value.operation == "get"

    run(main())


def test_foreign_exceptions_propagate_untouched_and_are_not_retried():
    async def main() -> None:
        clock = FakeClock()
        p = pipeline(ResiliencePolicy(breaker=BreakerPolicy(failure_threshold=1)), clock=clock)
        calls = 0
        bug = KeyError("oops")

        async def buggy(attempt: Attempt) -> str:
            nonlocal calls
            calls += 1
            raise bug

        with pytest.raises(KeyError) as info:
            await p.execute(buggy, ctx=ctx(), operation="op", idempotent=True)
        assert info.value is bug
        assert calls == 1
        assert (await p.breaker_snapshot("acme")).state is BreakerState.CLOSED

    run(main())


def test_retry_after_is_honoured_instead_of_backoff_and_retries_are_reported():
    async def main() -> None:
        clock = FakeClock(start=0.0)
        recorder = Recorder()
        p = pipeline(clock=clock, listener=recorder)
        log: list[Attempt] = []
        fn = script(clock, [(0.0, RateLimited(retry_after=7.0)), (0.0, None)], log)
        assert await p.execute(fn, ctx=ctx(), operation="op", idempotent=True) == "ok"
        assert clock.monotonic() == pytest.approx(7.0)
        (event,) = recorder.of(RetryEvent)
        assert (event.attempt, event.delay, event.reason, event.from_retry_after) == (
            1,
            7.0,
            "rate_limited",
            True,
        )
        assert (event.pipeline, event.tenant, event.operation) == ("svc", "acme", "op")

    run(main())


def test_gives_up_with_the_last_error_when_retry_after_passes_the_deadline():
    async def main() -> None:
        clock = FakeClock(start=0.0)
        p = pipeline(ResiliencePolicy(deadline=10.0), clock=clock)
        log: list[Attempt] = []
        fn = script(clock, [(0.0, RateLimited(retry_after=60.0)), (0.0, None)], log)
        with pytest.raises(RateLimited) as info:
            await p.execute(fn, ctx=ctx(), operation="op", idempotent=True)
        assert len(log) == 1
        assert clock.monotonic() == 0.0
        assert info.value.retry_after == 60.0
        assert any("deadline" in note for note in info.value.__notes__)

    run(main())


def test_attempts_exhausted_raises_the_last_error_after_backoff():
    async def main() -> None:
        clock = FakeClock(start=0.0)
        policy = ResiliencePolicy(retry=RetryPolicy(max_attempts=3, base_delay=1.0, jitter="none"))
        p = pipeline(policy, clock=clock)
        log: list[Attempt] = []
        last = ServiceUnavailable("third")
        steps = [
            (0.0, ServiceUnavailable("first")),
            (0.0, ServiceUnavailable("second")),
            (0.0, last),
        ]
        with pytest.raises(ServiceUnavailable) as info:
            await p.execute(script(clock, steps, log), ctx=ctx(), operation="op", idempotent=True)
        assert info.value is last
        assert clock.monotonic() == pytest.approx(3.0)  # 1 + 2
        assert "gave up after 3 attempts" in info.value.__notes__[0]

    run(main())


def test_test_mode_turns_backoff_waits_off():
    async def main() -> None:
        clock = FakeClock(start=0.0)
        p = pipeline(ResiliencePolicy(retry=RetryPolicy(base_delay=5.0)), clock=clock)
        log: list[Attempt] = []
        fn = script(clock, [(0.0, ServiceUnavailable("x")), (0.0, None)], log)
        with set_testing(True):
            assert await p.execute(fn, ctx=ctx(), operation="op", idempotent=True) == "ok"
        assert clock.monotonic() == 0.0
        assert len(log) == 2

    run(main())


def test_circuit_open_is_not_retried_inside_the_call():
    async def main() -> None:
        clock = FakeClock()
        policy = ResiliencePolicy(
            retry=RetryPolicy(max_attempts=5, base_delay=0.0, max_delay=0.0),
            breaker=BreakerPolicy(failure_threshold=2),
        )
        p = pipeline(policy, clock=clock)
        log: list[Attempt] = []
        with pytest.raises(CircuitOpen) as info:
            await p.execute(
                script(clock, [(0.0, ServiceUnavailable("503"))], log),
                ctx=ctx(),
                operation="op",
                idempotent=True,
            )
        assert len(log) == 2  # the third attempt met the open breaker
        assert isinstance(info.value.__cause__, ServiceUnavailable)

    run(main())


# --- timeouts ----------------------------------------------------------------------------------


def test_enforced_attempt_timeout_raises_timeout_with_request_sent():
    async def main() -> None:
        clock = FakeClock(start=0.0)
        policy = ResiliencePolicy(retry=RetryPolicy(max_attempts=1), attempt_timeout=2.0)
        p = pipeline(policy, clock=clock)
        log: list[Attempt] = []
        with pytest.raises(Timeout) as info:
            await p.execute(
                script(clock, [(50.0, None)], log), ctx=ctx(), operation="op", idempotent=True
            )
        assert info.value.request_sent is True
        assert clock.monotonic() == pytest.approx(2.0)

    run(main())


def test_unenforced_timeout_is_only_handed_to_the_attempt():
    async def main() -> None:
        clock = FakeClock(start=0.0)
        p = pipeline(ResiliencePolicy(attempt_timeout=2.0), clock=clock)
        log: list[Attempt] = []
        fn = script(clock, [(5.0, None)], log)
        assert (
            await p.execute(fn, ctx=ctx(), operation="op", idempotent=True, enforce_timeout=False)
            == "ok"
        )
        assert log[0].timeout == 2.0
        assert clock.monotonic() == pytest.approx(5.0)

    run(main())


def test_a_timeout_error_raised_by_fn_itself_is_not_converted():
    async def main() -> None:
        p = pipeline(clock=FakeClock())

        async def fn(attempt: Attempt) -> str:
            raise TimeoutError("from a library")

        with pytest.raises(TimeoutError, match="from a library"):
            await p.execute(fn, ctx=ctx(), operation="op", idempotent=True)

    run(main())


def test_infinite_attempt_timeout_and_no_deadline_runs_without_a_timer():
    async def main() -> None:
        clock = FakeClock(start=0.0)
        p = pipeline(ResiliencePolicy(attempt_timeout=math.inf), clock=clock)
        log: list[Attempt] = []
        assert (
            await p.execute(
                script(clock, [(1e5, None)], log), ctx=ctx(), operation="op", idempotent=True
            )
            == "ok"
        )
        assert log[0].timeout == math.inf

    run(main())


def test_real_clock_enforced_timeout():
    async def main() -> None:
        p = pipeline(
            ResiliencePolicy(retry=RetryPolicy(max_attempts=1), attempt_timeout=0.01),
            clock=None,
        )
        from connectors.clock import system_clock
        from connectors.resilience import Pipeline

        real = Pipeline("svc", p.policy, state=MemoryStateBackend(), clock=system_clock)

        async def hang(attempt: Attempt) -> str:
            await asyncio.sleep(10)
            return "late"

        with pytest.raises(Timeout):
            await real.execute(hang, ctx=ctx(), operation="op", idempotent=True)
        assert await real.execute(ok, ctx=ctx(), operation="op", idempotent=True) == "ok"

    run(main())


def test_cancellation_propagates_and_frees_the_bulkhead_and_probe():
    async def main() -> None:
        clock = FakeClock()
        p = pipeline(clock=clock)

        async def hang(attempt: Attempt) -> str:
            await clock.sleep(1e6)
            return "late"

        task = asyncio.create_task(p.execute(hang, ctx=ctx(), operation="op", idempotent=True))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert p._bulkhead.stats("acme") == (0, 0)

    run(main())


# --- tenant isolation (security invariant 3) ---------------------------------------------------


def test_one_tenants_failures_never_open_another_tenants_breaker():
    async def main() -> None:
        clock = FakeClock()
        state = MemoryStateBackend()
        policy = ResiliencePolicy(
            retry=RetryPolicy(max_attempts=1), breaker=BreakerPolicy(failure_threshold=2)
        )
        p = pipeline(policy, clock=clock, state=state)
        log: list[Attempt] = []
        broken = script(clock, [(0.0, ServiceUnavailable("503"))], log)
        for _ in range(2):
            with pytest.raises(ServiceUnavailable):
                await p.execute(broken, ctx=ctx("tenant-a"), operation="op", idempotent=True)
        with pytest.raises(CircuitOpen):
            await p.execute(ok, ctx=ctx("tenant-a"), operation="op", idempotent=True)
        assert await p.execute(ok, ctx=ctx("tenant-b"), operation="op", idempotent=True) == "ok"
        assert (await p.breaker_snapshot("tenant-b")).state is BreakerState.CLOSED
        # Resetting B does nothing to A; resetting A closes only A.
        await p.reset_breaker("tenant-b")
        assert (await p.breaker_snapshot("tenant-a")).state is BreakerState.OPEN
        await p.reset_breaker("tenant-a")
        assert (await p.breaker_snapshot("tenant-a")).state is BreakerState.CLOSED

    run(main())


def test_one_tenant_cannot_drain_another_tenants_rate_limit():
    async def main() -> None:
        clock = FakeClock(start=0.0)
        limit = RateLimit("api", rate=1.0, burst=2.0)
        p = pipeline(ResiliencePolicy(rate_limits=(limit,)), clock=clock)
        for _ in range(2):
            await p.execute(ok, ctx=ctx("tenant-a"), operation="op", idempotent=True)
        assert await p.rate_limit_remaining("tenant-a", limit) == 0.0
        assert await p.rate_limit_remaining("tenant-b", limit) == 2.0
        await p.execute(ok, ctx=ctx("tenant-b"), operation="op", idempotent=True)
        assert clock.monotonic() == 0.0  # B did not wait behind A
        await p.block_rate_limit("tenant-a", "api", 100.0)
        assert await p.rate_limit_remaining("tenant-b", limit) == 1.0

    run(main())


def test_breaker_keys_separate_endpoints_within_a_tenant():
    async def main() -> None:
        clock = FakeClock()
        policy = ResiliencePolicy(
            retry=RetryPolicy(max_attempts=1), breaker=BreakerPolicy(failure_threshold=1)
        )
        p = pipeline(policy, clock=clock)
        log: list[Attempt] = []
        with pytest.raises(ServiceUnavailable):
            await p.execute(
                script(clock, [(0.0, ServiceUnavailable("x"))], log),
                ctx=ctx(),
                operation="op",
                idempotent=True,
                breaker_key="bulk",
            )
        assert (await p.breaker_snapshot("acme", "bulk")).state is BreakerState.OPEN
        assert await p.execute(ok, ctx=ctx(), operation="op", idempotent=True) == "ok"

    run(main())


# --- events ------------------------------------------------------------------------------------


def test_the_success_path_calls_no_listener():
    class Loud(Recorder):
        def __getattribute__(self, name: str):  # type: ignore[no-untyped-def]
            if name.startswith("on_"):
                raise AssertionError(f"listener touched: {name}")
            return super().__getattribute__(name)

    async def main() -> None:
        p = pipeline(clock=FakeClock(), listener=Loud())
        for _ in range(10):
            assert await p.execute(ok, ctx=ctx(), operation="op", idempotent=True) == "ok"

    run(main())


def test_a_failing_listener_does_not_break_the_call(caplog):
    class Broken(Recorder):
        def on_retry(self, event: RetryEvent) -> None:
            raise RuntimeError("listener bug")

    async def main() -> None:
        clock = FakeClock()
        p = pipeline(clock=clock, listener=Broken())
        log: list[Attempt] = []
        fn = script(clock, [(0.0, ServiceUnavailable("x")), (0.0, None)], log)
        assert await p.execute(fn, ctx=ctx(), operation="op", idempotent=True) == "ok"

    run(main())
    assert "listener failed" in caplog.text


def test_operator_reset_and_force_open_emit_transitions():
    async def main() -> None:
        recorder = Recorder()
        p = pipeline(clock=FakeClock(), listener=recorder)
        await p.force_open_breaker("acme")
        with pytest.raises(CircuitOpen) as info:
            await p.execute(ok, ctx=ctx(), operation="op", idempotent=True)
        assert info.value.retry_after is None
        await p.reset_breaker("acme")
        await p.reset_breaker("acme")  # already closed: no event
        events = recorder.of(BreakerTransitionEvent)
        assert [(e.from_state, e.to_state, e.operation) for e in events] == [
            (BreakerState.CLOSED, BreakerState.FORCED_OPEN, None),
            (BreakerState.FORCED_OPEN, BreakerState.CLOSED, None),
        ]
        assert all(e.tenant == "acme" for e in events)

    run(main())


def test_pipeline_exposes_name_and_policy():
    policy = ResiliencePolicy()
    p = pipeline(policy, name="salesforce")
    assert p.name == "salesforce"
    assert p.policy is policy
    assert "salesforce" in repr(p)


def test_attempt_built_on_the_fast_path_equals_a_normal_one():
    from connectors.resilience.pipeline import _attempt

    c = ctx()
    assert _attempt(2, 1.5, c) == Attempt(2, 1.5, c)
    with pytest.raises(AttributeError):
        _attempt(1, 1.0, c).number = 3  # type: ignore[misc]

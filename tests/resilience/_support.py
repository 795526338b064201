"""Helpers shared by the resilience tests: a recording listener and scripted attempt functions."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from connectors.clock import FakeClock
from connectors.context import CallContext
from connectors.errors import ConnectorError
from connectors.resilience import (
    Attempt,
    BreakerTransitionEvent,
    BulkheadRejectedEvent,
    NoopListener,
    Pipeline,
    RateLimitWaitEvent,
    ResiliencePolicy,
    RetryEvent,
    set_testing,
)
from connectors.state import MemoryStateBackend, StateBackend


class Recorder(NoopListener):
    """Keeps every event it is given, in order."""

    def __init__(self) -> None:
        self.events: list[object] = []

    def on_retry(self, event: RetryEvent) -> None:
        self.events.append(event)

    def on_breaker_transition(self, event: BreakerTransitionEvent) -> None:
        self.events.append(event)

    def on_rate_limit_wait(self, event: RateLimitWaitEvent) -> None:
        self.events.append(event)

    def on_bulkhead_rejected(self, event: BulkheadRejectedEvent) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


@contextmanager
def waits_on() -> Iterator[None]:
    """Turn the process-wide test mode off (the suite's conftest turns it on)."""
    with set_testing(False):
        yield


def pipeline(
    policy: ResiliencePolicy | None = None,
    *,
    clock: FakeClock | None = None,
    state: StateBackend | None = None,
    listener: Recorder | None = None,
    name: str = "svc",
) -> Pipeline:
    return Pipeline(
        name,
        policy or ResiliencePolicy(),
        state=state or MemoryStateBackend(),
        clock=clock or FakeClock(),
        listener=listener,
    )


def ctx(tenant: str = "acme", **kw: object) -> CallContext:
    return CallContext(tenant=tenant, **kw)  # type: ignore[arg-type]


def script(
    clock: FakeClock, steps: list[tuple[float, ConnectorError | None]], log: list[Attempt]
) -> Callable[[Attempt], Awaitable[str]]:
    """An attempt function: attempt n sleeps steps[n][0] then raises steps[n][1] or succeeds."""

    async def fn(attempt: Attempt) -> str:
        log.append(attempt)
        duration, error = steps[min(attempt.number, len(steps)) - 1]
        if duration:
            await clock.sleep(duration)
        if error is not None:
            raise error
        return "ok"

    return fn


async def ok(attempt: Attempt) -> str:
    return "ok"

"""Events are frozen records; the no-op listener satisfies the listener protocol."""

from __future__ import annotations

import dataclasses

import pytest

from connectors.errors import ServiceUnavailable
from connectors.resilience import NoopListener, PipelineListener, RetryEvent


def test_events_are_immutable():
    event = RetryEvent(
        pipeline="svc",
        tenant="acme",
        operation="op",
        request_id="r1",
        attempt=1,
        delay=0.5,
        reason="service_unavailable",
        error=ServiceUnavailable("503"),
        from_retry_after=False,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.delay = 1.0  # type: ignore[misc]


def test_noop_listener_accepts_every_event():
    listener: PipelineListener = NoopListener()
    listener.on_retry(None)  # type: ignore[arg-type]
    listener.on_breaker_transition(None)  # type: ignore[arg-type]
    listener.on_rate_limit_wait(None)  # type: ignore[arg-type]
    listener.on_bulkhead_rejected(None)  # type: ignore[arg-type]

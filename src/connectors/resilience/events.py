"""What the pipeline tells observers: frozen event records and the listener hook.

A :class:`PipelineListener` gets one method call per event, and only when something happens (a
retry, a breaker transition, a rate-limit wait, a bulkhead rejection): the plain success path
calls nothing. Observability implements it (``connector_retries_total{reason}``, circuit state
and transitions, rate-limit wait seconds). A listener must be cheap and should not raise; if it
does, the pipeline logs the error and carries on with the call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from connectors.errors import ConnectorError
from connectors.state.base import BreakerState

__all__ = [
    "BreakerTransitionEvent",
    "BulkheadRejectedEvent",
    "NoopListener",
    "PipelineListener",
    "RateLimitWaitEvent",
    "RetryEvent",
]


@dataclass(frozen=True, slots=True)
class RetryEvent:
    """Attempt ``attempt`` failed with ``error`` and will be retried after ``delay`` seconds."""

    pipeline: str
    tenant: str
    operation: str
    request_id: str
    attempt: int
    delay: float
    #: Low-cardinality label of the error (``rate_limited``, ``timeout``...).
    reason: str
    error: ConnectorError
    #: The delay is the provider's Retry-After, not backoff.
    from_retry_after: bool


@dataclass(frozen=True, slots=True)
class BreakerTransitionEvent:
    """The breaker ``breaker_key`` of ``tenant`` moved from ``from_state`` to ``to_state``."""

    pipeline: str
    tenant: str
    breaker_key: str
    from_state: BreakerState
    to_state: BreakerState
    #: The call that caused it (``None`` for an operator reset).
    operation: str | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class RateLimitWaitEvent:
    """An attempt waits ``wait`` seconds for the rate limits ``keys`` (or was refused)."""

    pipeline: str
    tenant: str
    operation: str
    request_id: str
    keys: tuple[str, ...]
    wait: float
    #: ``False`` when the wait would pass the deadline and the attempt was refused instead.
    admitted: bool = True


@dataclass(frozen=True, slots=True)
class BulkheadRejectedEvent:
    """An attempt was turned away by the bulkhead (queue full, or queued too long)."""

    pipeline: str
    tenant: str
    operation: str
    request_id: str
    in_flight: int
    queued: int
    #: ``"queue_full"`` or ``"max_wait"``.
    reason: str


class PipelineListener(Protocol):
    """Receives resilience events; one method per event type."""

    def on_retry(self, event: RetryEvent) -> None: ...

    def on_breaker_transition(self, event: BreakerTransitionEvent) -> None: ...

    def on_rate_limit_wait(self, event: RateLimitWaitEvent) -> None: ...

    def on_bulkhead_rejected(self, event: BulkheadRejectedEvent) -> None: ...


class NoopListener:
    """A listener that ignores every event (the default); subclass it to handle a few."""

    __slots__ = ()

    def on_retry(self, event: RetryEvent) -> None:
        """Ignore."""

    def on_breaker_transition(self, event: BreakerTransitionEvent) -> None:
        """Ignore."""

    def on_rate_limit_wait(self, event: RateLimitWaitEvent) -> None:
        """Ignore."""

    def on_bulkhead_rejected(self, event: BulkheadRejectedEvent) -> None:
        """Ignore."""

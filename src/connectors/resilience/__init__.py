"""Resilience policies: retry, circuit breaker, rate limiter, bulkhead, deadline, pipeline.

Pure policies over a :class:`~connectors.state.StateBackend`, composed by :class:`Pipeline` in the
order deadline › retry › circuit breaker › rate limiter › bulkhead › attempt timeout. See
``docs/resilience.md`` for defaults, the idempotency rule and ``Retry-After`` handling.
"""

from __future__ import annotations

from connectors.resilience.breaker import CircuitBreaker, counts_as_failure, outcome_of
from connectors.resilience.bulkhead import Bulkhead
from connectors.resilience.events import (
    BreakerTransitionEvent,
    BulkheadRejectedEvent,
    NoopListener,
    PipelineListener,
    RateLimitWaitEvent,
    RetryEvent,
)
from connectors.resilience.limiter import RateLimiter
from connectors.resilience.pipeline import Attempt, Pipeline
from connectors.resilience.policies import (
    BreakerPolicy,
    BulkheadPolicy,
    RateLimit,
    ResiliencePolicy,
    RetryPolicy,
)
from connectors.resilience.retry import (
    GiveUpReason,
    RetryDecision,
    backoff_delay,
    decide_retry,
    is_retryable,
    parse_retry_after,
)
from connectors.resilience.testmode import is_testing, set_testing
from connectors.resilience.timeout import attempt_budget, timeout_scope

__all__ = [
    "Attempt",
    "BreakerPolicy",
    "BreakerTransitionEvent",
    "Bulkhead",
    "BulkheadPolicy",
    "BulkheadRejectedEvent",
    "CircuitBreaker",
    "GiveUpReason",
    "NoopListener",
    "Pipeline",
    "PipelineListener",
    "RateLimit",
    "RateLimitWaitEvent",
    "RateLimiter",
    "ResiliencePolicy",
    "RetryDecision",
    "RetryEvent",
    "RetryPolicy",
    "attempt_budget",
    "backoff_delay",
    "counts_as_failure",
    "decide_retry",
    "is_retryable",
    "is_testing",
    "outcome_of",
    "parse_retry_after",
    "set_testing",
    "timeout_scope",
]

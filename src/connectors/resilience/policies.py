"""The resilience policies: frozen, validated values (times in seconds).

They are plain data: the settings layer builds them from ``CONNECTOR_*`` variables and a
definition's ``resilience:`` block (explicit argument > definition > environment > default), and
the :class:`~connectors.resilience.pipeline.Pipeline` executes them. Every value is checked in
``__post_init__`` and a bad one raises :class:`~connectors.errors.InvalidSetting` naming the field
and the accepted range. Policies are hashable, so a runtime can share one pipeline per policy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from connectors.errors import InvalidSetting
from connectors.state.base import BreakerConfig

__all__ = [
    "BreakerPolicy",
    "BulkheadPolicy",
    "RateLimit",
    "ResiliencePolicy",
    "RetryPolicy",
]

Jitter = Literal["full", "equal", "none"]
BreakerMode = Literal["consecutive", "ratio"]


def _int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidSetting(name, value, f"an integer ≥ {minimum}")


def _number(name: str, value: object, *, low: float, low_open: bool, accepted: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise InvalidSetting(name, value, accepted)
    if value < low or (low_open and value == low):
        raise InvalidSetting(name, value, accepted)


def _seconds(name: str, value: object, *, allow_zero: bool = False, allow_inf: bool = True) -> None:
    accepted = "a number of seconds " + ("≥ 0" if allow_zero else "> 0")
    _number(name, value, low=0.0, low_open=not allow_zero, accepted=accepted)
    if not allow_inf and value == math.inf:
        raise InvalidSetting(name, value, accepted + " and finite")


def _fraction(name: str, value: object) -> None:
    _number(name, value, low=0.0, low_open=True, accepted="a ratio in (0, 1]")
    if value > 1.0:  # type: ignore[operator]
        raise InvalidSetting(name, value, "a ratio in (0, 1]")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry, bounded in attempts *and* time.

    The delay before retry ``n`` (after attempt ``n`` failed) is ``base_delay * 2**(n-1)`` capped
    at ``max_delay``, with ``jitter``: ``"full"`` draws uniformly from ``[0, delay]``, ``"equal"``
    from ``[delay/2, delay]``, ``"none"`` uses the delay itself. A provider's ``Retry-After``
    replaces the backoff (capped at ``max_retry_after``) unless ``respect_retry_after`` is off.
    ``max_elapsed`` bounds the time spent in one call including waits (``None``: only the
    deadline bounds it).
    """

    max_attempts: int = 3
    base_delay: float = 0.1
    max_delay: float = 10.0
    jitter: Jitter = "full"
    max_elapsed: float | None = None
    respect_retry_after: bool = True
    max_retry_after: float = 300.0

    def __post_init__(self) -> None:
        _int("retry.max_attempts", self.max_attempts, 1)
        _seconds("retry.base_delay", self.base_delay, allow_zero=True, allow_inf=False)
        _seconds("retry.max_delay", self.max_delay, allow_zero=True, allow_inf=False)
        if self.max_delay < self.base_delay:
            raise InvalidSetting(
                "retry.max_delay", self.max_delay, f"at least retry.base_delay ({self.base_delay})"
            )
        if self.jitter not in ("full", "equal", "none"):
            raise InvalidSetting("retry.jitter", self.jitter, "one of 'full', 'equal', 'none'")
        if self.max_elapsed is not None:
            _seconds("retry.max_elapsed", self.max_elapsed)
        if not isinstance(self.respect_retry_after, bool):
            raise InvalidSetting("retry.respect_retry_after", self.respect_retry_after, "a bool")
        _seconds("retry.max_retry_after", self.max_retry_after, allow_zero=True)


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """When the circuit breaker opens, how long it stays open and how it probes.

    ``mode="consecutive"``: open after ``failure_threshold`` failures in a row.
    ``mode="ratio"``: open when, over the last ``window`` seconds and at least ``minimum_calls``
    calls, the failure share reaches ``failure_ratio`` (or the slow share ``slow_call_ratio``).
    With ``slow_call_duration`` set, a call slower than it counts as slow; in consecutive mode a
    slow call counts as a failure. After ``reset_timeout`` the breaker lets
    ``half_open_max_calls`` probes through; all must succeed to close it.
    """

    mode: BreakerMode = "consecutive"
    failure_threshold: int = 5
    failure_ratio: float = 0.5
    minimum_calls: int = 10
    window: float = 60.0
    reset_timeout: float = 30.0
    half_open_max_calls: int = 1
    slow_call_duration: float | None = None
    slow_call_ratio: float = 1.0

    def __post_init__(self) -> None:
        if self.mode not in ("consecutive", "ratio"):
            raise InvalidSetting("circuit_breaker.mode", self.mode, "'consecutive' or 'ratio'")
        _int("circuit_breaker.failure_threshold", self.failure_threshold, 1)
        _fraction("circuit_breaker.failure_ratio", self.failure_ratio)
        _int("circuit_breaker.minimum_calls", self.minimum_calls, 1)
        _seconds("circuit_breaker.window", self.window, allow_inf=False)
        _seconds("circuit_breaker.reset_timeout", self.reset_timeout, allow_inf=False)
        _int("circuit_breaker.half_open_max_calls", self.half_open_max_calls, 1)
        if self.slow_call_duration is not None:
            _seconds("circuit_breaker.slow_call_duration", self.slow_call_duration)
        _fraction("circuit_breaker.slow_call_ratio", self.slow_call_ratio)

    def config(self, *, probe_lease: float) -> BreakerConfig:
        """The state backend's view of this policy (``probe_lease``: when a silent probe's
        slot is given to another caller)."""
        return BreakerConfig(
            mode=self.mode,
            failure_threshold=self.failure_threshold,
            failure_ratio=self.failure_ratio,
            minimum_calls=self.minimum_calls,
            window=self.window,
            reset_timeout=self.reset_timeout,
            half_open_max_calls=self.half_open_max_calls,
            slow_call_ratio=self.slow_call_ratio,
            probe_lease=probe_lease,
        )


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A client-side rate limit: ``rate`` units per second on ``key``, ``burst`` units deep.

    A limiter starts with ``burst`` units (not a full second's worth) and each attempt takes
    ``cost`` units; ``cost`` may not exceed ``burst`` (such a call could never be admitted by a
    token bucket of that depth). ``key`` names the quota within the connector and tenant.
    """

    key: str
    rate: float
    burst: float = 1.0
    cost: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key:
            raise InvalidSetting("rate_limits.key", self.key, "a non-empty string")
        _number(
            "rate_limits.rate",
            self.rate,
            low=0.0,
            low_open=True,
            accepted="units per second > 0 and finite",
        )
        if self.rate == math.inf:
            raise InvalidSetting("rate_limits.rate", self.rate, "units per second > 0 and finite")
        _number("rate_limits.burst", self.burst, low=0.0, low_open=True, accepted="a number > 0")
        _number("rate_limits.cost", self.cost, low=0.0, low_open=True, accepted="a number > 0")
        if self.burst == math.inf or self.cost > self.burst:
            raise InvalidSetting(
                "rate_limits.cost", self.cost, f"a number ≤ rate_limits.burst ({self.burst})"
            )


@dataclass(frozen=True, slots=True)
class BulkheadPolicy:
    """At most ``max_concurrent`` attempts in flight per tenant and connector in this process,
    at most ``max_queue`` waiting for a slot (``max_wait`` seconds at most); the rest are
    rejected with :class:`~connectors.errors.BulkheadFull`."""

    max_concurrent: int = 50
    max_queue: int = 100
    max_wait: float | None = None

    def __post_init__(self) -> None:
        _int("bulkhead.max_concurrent", self.max_concurrent, 1)
        _int("bulkhead.max_queue", self.max_queue, 0)
        if self.max_wait is not None:
            _seconds("bulkhead.max_wait", self.max_wait)


@dataclass(frozen=True, slots=True)
class ResiliencePolicy:
    """Everything the pipeline applies to one connector's calls.

    ``attempt_timeout`` bounds each attempt (``math.inf``: no per-attempt bound); ``deadline``
    bounds the whole call including retries and waits, counted from the call's start and
    combined (earliest) with the caller's own deadline. ``rate_limits`` apply to every attempt.
    """

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    breaker: BreakerPolicy = field(default_factory=BreakerPolicy)
    bulkhead: BulkheadPolicy = field(default_factory=BulkheadPolicy)
    attempt_timeout: float = 30.0
    deadline: float | None = None
    rate_limits: tuple[RateLimit, ...] = ()

    def __post_init__(self) -> None:
        for name, value, kind in (
            ("retry", self.retry, RetryPolicy),
            ("circuit_breaker", self.breaker, BreakerPolicy),
            ("bulkhead", self.bulkhead, BulkheadPolicy),
        ):
            if not isinstance(value, kind):
                raise InvalidSetting(name, type(value).__name__, f"a {kind.__name__}")
        _seconds("timeout", self.attempt_timeout)
        if self.deadline is not None:
            _seconds("deadline", self.deadline)
        limits = tuple(self.rate_limits)
        for limit in limits:
            if not isinstance(limit, RateLimit):
                raise InvalidSetting("rate_limits", type(limit).__name__, "RateLimit entries")
        object.__setattr__(self, "rate_limits", limits)

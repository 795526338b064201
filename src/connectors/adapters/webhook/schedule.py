"""When to retry a delivery, and when to give up on an endpoint.

The default schedule is Svix's: immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h
(8 attempts over about 27.5 hours). A ``Retry-After`` from the receiver (429, 503) can only
lengthen a wait, never shorten it, and is capped at ``max_retry_after``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from connectors.errors import InvalidSetting

__all__ = ["DEFAULT_DELAYS", "DisablePolicy", "RetrySchedule"]

#: Delay before each attempt, from the message's creation (attempt 1 is immediate).
DEFAULT_DELAYS: Final[tuple[float, ...]] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """Delays before attempts 1..n; ``jitter`` is a fraction (0.1 = up to ±10 %)."""

    delays: tuple[float, ...] = DEFAULT_DELAYS
    jitter: float = 0.0
    max_retry_after: float = 36000.0

    def __post_init__(self) -> None:
        if not self.delays or any(d < 0 for d in self.delays):
            raise InvalidSetting("webhook.retry_schedule", self.delays, "a non-empty list of ≥ 0")
        if not 0 <= self.jitter < 1:
            raise InvalidSetting("webhook.retry_jitter", self.jitter, "a fraction in [0, 1)")

    @classmethod
    def of(cls, delays: Sequence[float], *, jitter: float = 0.0) -> RetrySchedule:
        return cls(tuple(float(d) for d in delays), jitter=jitter)

    @property
    def max_attempts(self) -> int:
        return len(self.delays)

    def delay_after(self, attempts: int, *, retry_after: float | None = None) -> float | None:
        """Seconds to wait after ``attempts`` failed attempts; ``None`` when exhausted."""
        if attempts >= len(self.delays):
            return None
        delay = self.delays[attempts]
        if self.jitter:
            delay *= 1 + random.uniform(-self.jitter, self.jitter)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.max_retry_after))
        return max(0.0, delay)


@dataclass(frozen=True, slots=True)
class DisablePolicy:
    """When an endpoint is disabled automatically.

    ``failing_for``: every attempt to it has failed for this long (seconds; Svix: 5 days).
    ``dead_letters``: this many messages in a row ended in the dead-letter list (``None``: off).
    ``on_gone``: a ``410 Gone`` answer disables it at once (Standard Webhooks recommendation).
    """

    failing_for: float | None = 5 * 24 * 3600.0
    dead_letters: int | None = 5
    on_gone: bool = True

"""Token buckets for the emulator's rate limits, on an injected clock, time-scalable.

Slack limits each method per workspace per app by tier (``N+ per minute``, with bursts
tolerated): a bucket of ``N`` tokens refilled at ``N`` per minute models that. chat.postMessage's
"one message per second per channel, short bursts allowed" is a bucket of ``burst`` tokens
refilled at one per second. ``time_scale`` multiplies the refill rate, so a benchmark can run a
minute of limits in a second; waits come back in clock seconds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from connectors.clock import Clock

__all__ = ["BucketLimiter", "format_retry_after"]


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


class BucketLimiter:
    """Named token buckets. ``take`` returns None when allowed, else the wait in seconds."""

    def __init__(self, clock: Clock, time_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self._clock = clock
        self._scale = time_scale
        self._buckets: dict[tuple[str, ...], _Bucket] = {}

    def take(self, key: tuple[str, ...], per_second: float, burst: float) -> float | None:
        """Take one token from ``key``'s bucket (created full); the wait if it is empty."""
        now = self._clock.monotonic()
        rate = per_second * self._scale
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = _Bucket(tokens=burst, stamp=now)
            self._buckets[key] = bucket
        else:
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.stamp) * rate)
            bucket.stamp = now
        if bucket.tokens >= 1.0 - 1e-9:
            bucket.tokens -= 1.0
            return None
        return (1.0 - bucket.tokens) / rate

    def reset(self) -> None:
        """Forget every bucket (all full again)."""
        self._buckets.clear()


def format_retry_after(wait: float, *, integer: bool) -> str:
    """``Retry-After``: whole seconds rounded up (Slack's form), or milliseconds rounded up."""
    if integer:
        return str(max(1, math.ceil(wait - 1e-9)))
    return f"{max(0.001, math.ceil(wait * 1000 - 1e-6) / 1000):.3f}"

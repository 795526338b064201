"""Retry decisions: what is retried, after how long, and when to give up. Pure functions.

What is retried: a :class:`~connectors.errors.TransientError` whose class keeps
``retryable = True`` (rate limited, service unavailable, connection failed, timeout, ambiguous
outcome). Not retried: permanent and auth errors, and the fail-fast errors the pipeline raises
itself (``CircuitOpen``, ``BulkheadFull``, ``DeadlineExceeded``): retrying those in a tight loop
is what they exist to prevent; their ``retryable`` flag tells the *caller* it may try later.

A non-idempotent operation is retried only when the error proves the request never reached the
server (``error.request_sent is False``: ``ConnectionFailed``, a connect ``Timeout``).

The wait is the provider's ``Retry-After`` when it gave one (capped at ``max_retry_after``),
else exponential backoff with jitter. The pipeline gives up, raising the last error, when the
attempts are used up or the wait would reach the deadline or ``max_elapsed``: it stops *before*
the budget instead of sleeping past it.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Final

from connectors.errors import ConnectorError, TransientError
from connectors.resilience.policies import RetryPolicy

__all__ = [
    "GiveUpReason",
    "RetryDecision",
    "backoff_delay",
    "decide_retry",
    "error_reason",
    "is_retryable",
    "parse_retry_after",
]

_DELTA: Final = re.compile(r"\d{1,12}(?:\.\d{1,9})?")
_CAMEL: Final = re.compile(r"(?<!^)(?=[A-Z])")
_reasons: dict[type[BaseException], str] = {}


class GiveUpReason:
    """Why a failed call is not retried (values for logs and metrics)."""

    NOT_RETRYABLE: Final = "not_retryable"
    NOT_IDEMPOTENT: Final = "not_idempotent"
    ATTEMPTS: Final = "attempts_exhausted"
    MAX_ELAPSED: Final = "max_elapsed"
    DEADLINE: Final = "deadline"


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """Retry after ``delay`` seconds, or give up for ``reason``."""

    retry: bool
    delay: float
    reason: str
    #: The delay came from the provider's Retry-After rather than backoff.
    from_retry_after: bool = False


def error_reason(error: BaseException) -> str:
    """A low-cardinality label for an error: its class name in snake case (``rate_limited``)."""
    cls = type(error)
    found = _reasons.get(cls)
    if found is None:
        found = _reasons[cls] = _CAMEL.sub("_", cls.__name__).lower()
    return found


def backoff_delay(
    policy: RetryPolicy, retry: int, rand: Callable[[], float] = random.random
) -> float:
    """The wait before retry number ``retry`` (1 = the first retry).

    ``base_delay * 2**(retry-1)`` capped at ``max_delay``; full jitter draws from ``[0, cap)``,
    equal jitter from ``[cap/2, cap)``, none returns the cap.
    """
    cap = policy.base_delay * 2.0 ** min(max(retry - 1, 0), 1023)
    if cap > policy.max_delay:
        cap = policy.max_delay
    if policy.jitter == "full":
        return cap * rand()
    if policy.jitter == "equal":
        return cap / 2.0 + cap / 2.0 * rand()
    return cap


def parse_retry_after(value: str, now_wall: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value, or ``None`` to use backoff.

    Accepts delta-seconds (``"120"``, also ``"1.5"``) and an HTTP-date (IMF-fixdate, RFC 850 or
    asctime; a date without a zone is taken as GMT). A date in the past (or now) gives ``None``,
    as does anything unparseable: a confused server must not make us retry in a tight loop.
    ``now_wall`` is the current Unix time from the caller's clock.
    """
    text = value.strip()
    if not text:
        return None
    if _DELTA.fullmatch(text):
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (ValueError, TypeError, OverflowError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        delay = when.timestamp() - now_wall
    except (OverflowError, ValueError, OSError):
        return None
    if not delay > 0.0 or math.isinf(delay):
        return None
    return delay


def is_retryable(error: ConnectorError) -> bool:
    """Whether the error class may be retried at all (transient and still flagged retryable)."""
    return isinstance(error, TransientError) and error.retryable


def decide_retry(
    policy: RetryPolicy,
    error: ConnectorError,
    *,
    attempt: int,
    idempotent: bool,
    elapsed: float,
    remaining: float,
    rand: Callable[[], float] = random.random,
) -> RetryDecision:
    """Decide whether to retry after attempt number ``attempt`` failed with ``error``.

    ``elapsed``: seconds since the call started; ``remaining``: seconds to the deadline
    (``inf`` for none). Gives up when the wait would reach the deadline or ``max_elapsed``.
    """
    if not isinstance(error, TransientError) or not error.retryable:
        return RetryDecision(False, 0.0, GiveUpReason.NOT_RETRYABLE)
    if not idempotent and error.request_sent:
        return RetryDecision(False, 0.0, GiveUpReason.NOT_IDEMPOTENT)
    if attempt >= policy.max_attempts:
        return RetryDecision(False, 0.0, GiveUpReason.ATTEMPTS)
    retry_after = error.retry_after if policy.respect_retry_after else None
    from_header = retry_after is not None and retry_after >= 0.0
    if retry_after is not None and from_header:
        delay = min(float(retry_after), policy.max_retry_after)
    else:
        delay = backoff_delay(policy, attempt, rand)
    if policy.max_elapsed is not None and elapsed + delay >= policy.max_elapsed:
        return RetryDecision(False, delay, GiveUpReason.MAX_ELAPSED, from_header)
    if delay >= remaining:
        return RetryDecision(False, delay, GiveUpReason.DEADLINE, from_header)
    return RetryDecision(True, delay, error_reason(error), from_header)

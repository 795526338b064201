"""Shared hypothesis settings for the fuzz suite.

``FUZZ_EXAMPLES`` sets the examples per target: 200 by default (CI, ``make test``), 10,000 in the
long run (``make fuzz``). No deadline: a noisy shared box must not turn a slow example into a
failure; the property is "no unhandled exception, every rejection typed", not speed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TypeVar

from hypothesis import HealthCheck, settings

__all__ = ["EXAMPLES", "fuzz"]

T = TypeVar("T")

#: Examples per target.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "200"))

_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def fuzz(fn: Callable[..., T]) -> Callable[..., T]:
    """Apply the suite's settings to a ``@given`` test."""
    return _SETTINGS(fn)

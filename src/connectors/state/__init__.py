"""Shared runtime state: rate-limit buckets, breaker state, leases, seen ids, counters.

:class:`StateBackend` is the contract (every operation one atomic step); the in-memory
:class:`MemoryStateBackend` is the default for one process, and a Redis backend (Lua scripts)
serves many processes with the same semantics.
"""

from __future__ import annotations

from connectors.state.base import (
    BreakerConfig,
    BreakerOutcome,
    BreakerPermit,
    BreakerSnapshot,
    BreakerState,
    BreakerTransition,
    RateDecision,
    RateRequest,
    StateBackend,
)
from connectors.state.memory import MemoryStateBackend

__all__ = [
    "BreakerConfig",
    "BreakerOutcome",
    "BreakerPermit",
    "BreakerSnapshot",
    "BreakerState",
    "BreakerTransition",
    "MemoryStateBackend",
    "RateDecision",
    "RateRequest",
    "StateBackend",
]

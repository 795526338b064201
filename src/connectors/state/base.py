"""The shared runtime state contract: rate limits, circuit breakers, leases, seen ids, counters.

Every operation of :class:`StateBackend` is one atomic step: the in-memory backend runs it as a
synchronous update inside the coroutine (atomic with respect to the event loop, and under a
``threading.Lock`` for the sync face), and the Redis backend runs it as one Lua script. So no
operation is a read-modify-write split across calls, and none sleeps: an acquisition *returns*
how long the caller must wait and the caller waits with its own clock.

Keys are plain strings. Callers build them with the tenant first (see
``connectors.resilience.keys``), so one tenant can never reach another tenant's state. Every time
(``now``) is passed in explicitly from the caller's :class:`~connectors.clock.Clock`, on the
monotonic scale; a Redis backend may substitute server time, but the parameter stays so that the
in-memory backend and tests are deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Protocol, runtime_checkable

__all__ = [
    "BreakerConfig",
    "BreakerOutcome",
    "BreakerPermit",
    "BreakerSnapshot",
    "BreakerState",
    "BreakerTransition",
    "RateDecision",
    "RateRequest",
    "StateBackend",
]


# --- rate limiting (GCRA) ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RateRequest:
    """One key's part of a rate acquisition: ``cost`` units at ``rate`` units/s, ``burst`` deep."""

    key: str
    rate: float
    burst: float = 1.0
    cost: float = 1.0


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The answer to a rate acquisition.

    ``admitted``: the units were reserved and the caller may proceed after ``wait`` seconds
    (``0.0`` = now). Not admitted: nothing was reserved; ``wait`` is what it would have needed.
    """

    admitted: bool
    wait: float


# --- circuit breaker ---------------------------------------------------------------------------


class BreakerState(StrEnum):
    """The states of a circuit breaker (values are the names used in metrics and the API)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"
    #: Opened by an operator; stays open until reset.
    FORCED_OPEN = "forced_open"


class BreakerOutcome(StrEnum):
    """What happened to a permitted call, as far as the breaker is concerned."""

    SUCCESS = "success"
    FAILURE = "failure"
    #: The call ended without a verdict on the provider's health (cancelled, a local bug, a
    #: local rejection): it only gives back its half-open probe slot.
    IGNORED = "ignored"


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """The breaker parameters, passed with every call so the backend stays stateless in config.

    ``mode="consecutive"`` opens after ``failure_threshold`` failures in a row.
    ``mode="ratio"`` opens when, over the last ``window`` seconds and at least ``minimum_calls``
    calls, failures/calls ≥ ``failure_ratio`` or slow/calls ≥ ``slow_call_ratio``.
    The open state lasts ``reset_timeout`` seconds; then up to ``half_open_max_calls`` probes are
    admitted; they all must succeed to close the breaker, and one failure opens it again. A probe
    that never reports back frees its slot after ``probe_lease`` seconds.
    """

    mode: Literal["consecutive", "ratio"] = "consecutive"
    failure_threshold: int = 5
    failure_ratio: float = 0.5
    minimum_calls: int = 10
    window: float = 60.0
    reset_timeout: float = 30.0
    half_open_max_calls: int = 1
    slow_call_ratio: float = 1.0
    probe_lease: float = 60.0


@dataclass(frozen=True, slots=True)
class BreakerTransition:
    """A state change, returned by the operation that caused it (for events and metrics)."""

    from_state: BreakerState
    to_state: BreakerState


@dataclass(frozen=True, slots=True)
class BreakerPermit:
    """The breaker's answer before a call.

    ``allowed`` calls must report back with :meth:`StateBackend.breaker_record` and this permit.
    A rejected call carries ``retry_after`` (seconds until the breaker may admit again, ``None``
    when forced open). ``transition`` is set when this check moved the breaker (open → half-open).
    """

    allowed: bool
    state: BreakerState
    retry_after: float | None = None
    is_probe: bool = False
    #: The breaker's epoch when the permit was issued; reports from an older epoch are ignored.
    generation: int = 0
    transition: BreakerTransition | None = None
    #: Whether a *success* must be reported. ``False`` when it would change nothing (a closed
    #: consecutive-mode breaker with no failure counted when the permit was issued), which
    #: spares the success path a round trip; failures and ignored outcomes are always reported.
    report_success: bool = True

    @classmethod
    def refusal(cls, state: BreakerState, retry_after: float | None) -> BreakerPermit:
        """``BreakerPermit(False, state, retry_after=retry_after)``, built for the fast-fail path
        (an open breaker answers every call with one): the slots filled directly, without the
        frozen dataclass's ``__init__`` (half the cost)."""
        permit = _new_permit(cls)
        _refusal_fill(permit, state, retry_after)
        return permit


_new_permit = object.__new__
# Each field's slot setter, taken by name; a field refusal() does not fill stops the import.
_PERMIT_SETTERS = {name: BreakerPermit.__dict__[name].__set__ for name in BreakerPermit.__slots__}
_set_allowed = _PERMIT_SETTERS.pop("allowed")
_set_state = _PERMIT_SETTERS.pop("state")
_set_retry_after = _PERMIT_SETTERS.pop("retry_after")
_set_is_probe = _PERMIT_SETTERS.pop("is_probe")
_set_generation = _PERMIT_SETTERS.pop("generation")
_set_transition = _PERMIT_SETTERS.pop("transition")
_set_report_success = _PERMIT_SETTERS.pop("report_success")
if _PERMIT_SETTERS:  # pragma: no cover
    raise RuntimeError(f"BreakerPermit.refusal does not fill {sorted(_PERMIT_SETTERS)}")


def _refusal_fill(permit: BreakerPermit, state: BreakerState, retry_after: float | None) -> None:
    _set_allowed(permit, False)
    _set_state(permit, state)
    _set_retry_after(permit, retry_after)
    _set_is_probe(permit, False)
    _set_generation(permit, 0)
    _set_transition(permit, None)
    _set_report_success(permit, True)


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """A breaker's state for the health API and dashboards (times on the monotonic scale)."""

    state: BreakerState
    calls: int
    failures: int
    slow_calls: int
    consecutive_failures: int
    opened_at: float | None
    #: When the open breaker will admit a probe (``None`` unless open).
    next_probe_at: float | None
    half_open_in_flight: int


# --- the contract ------------------------------------------------------------------------------


@runtime_checkable
class StateBackend(Protocol):
    """Shared runtime state; every method is one atomic step (one Lua call on Redis)."""

    # rate limiting ------------------------------------------------------------------------------

    async def rate_acquire(
        self, key: str, *, rate: float, burst: float, cost: float, max_wait: float, now: float
    ) -> RateDecision:
        """Reserve ``cost`` units on ``key`` (GCRA); say how long to wait before using them.

        A fresh key holds ``burst`` units. When the wait would exceed ``max_wait`` nothing is
        reserved and the decision is not admitted. Reservations are served in arrival order.
        """
        ...

    async def rate_acquire_many(
        self, requests: Sequence[RateRequest], *, max_wait: float, now: float
    ) -> RateDecision:
        """Reserve on every key at one common time, all or nothing (keys share a tenant)."""
        ...

    async def rate_block(self, key: str, *, seconds: float, now: float) -> None:
        """Admit nothing on ``key`` for ``seconds`` (server feedback: 429 with Retry-After)."""
        ...

    async def rate_remaining(self, key: str, *, rate: float, burst: float, now: float) -> float:
        """Units that could be taken right now without waiting (for metrics), 0..burst."""
        ...

    # circuit breaker ----------------------------------------------------------------------------

    async def breaker_acquire(
        self, key: str, *, config: BreakerConfig, now: float
    ) -> BreakerPermit:
        """Ask to make a call: admitted (closed, or one of the half-open probes) or rejected."""
        ...

    async def breaker_record(
        self,
        key: str,
        *,
        config: BreakerConfig,
        permit: BreakerPermit,
        outcome: BreakerOutcome,
        slow: bool,
        now: float,
    ) -> BreakerTransition | None:
        """Record a permitted call's outcome; return the transition it caused, if any.

        A success may be left unreported when ``permit.report_success`` is false.
        """
        ...

    async def breaker_snapshot(
        self, key: str, *, config: BreakerConfig, now: float
    ) -> BreakerSnapshot:
        """The breaker's current state and counts."""
        ...

    async def breaker_reset(self, key: str, *, now: float) -> BreakerTransition | None:
        """Close the breaker and clear its counts (operator action)."""
        ...

    async def breaker_force_open(self, key: str, *, now: float) -> BreakerTransition | None:
        """Open the breaker until reset (operator action: isolate a provider)."""
        ...

    # leases -------------------------------------------------------------------------------------

    async def lock_acquire(self, key: str, *, owner: str, ttl: float, now: float) -> int | None:
        """Take the lease for ``ttl`` seconds; a fencing token (increasing), ``None`` if held.

        The owner that already holds a live lease renews it and gets the same token back.
        """
        ...

    async def lock_release(self, key: str, *, owner: str, now: float | None = None) -> bool:
        """Give the lease back; ``False`` if ``owner`` did not hold a live lease."""
        ...

    async def lock_extend(self, key: str, *, owner: str, ttl: float, now: float) -> bool:
        """Extend the owner's live lease to ``now + ttl``; ``False`` if it was lost."""
        ...

    # seen ids and counters ----------------------------------------------------------------------

    async def seen_add(self, key: str, *, ttl: float, now: float) -> bool:
        """Remember ``key`` for ``ttl`` seconds; ``True`` the first time (deduplication)."""
        ...

    async def incr(self, key: str, amount: int = 1, *, ttl: float, now: float) -> int:
        """Add ``amount`` to a counter and return it; the TTL starts with the first increment."""
        ...

    async def counter_get(self, key: str, *, now: float) -> int:
        """A counter's current value (0 when missing or expired)."""
        ...

"""The circuit breaker: fail fast while a provider is failing, probe carefully when it may be back.

State lives in the :class:`~connectors.state.base.StateBackend` (in memory, or Redis shared by
every process), one atomic step before and one after each call, so the half-open state admits
exactly ``half_open_max_calls`` probes however many callers race for them. Modes, thresholds and
slow calls are described on :class:`~connectors.resilience.policies.BreakerPolicy`.

What counts against the provider (:func:`outcome_of`):

* failure: transient errors that say the provider is unwell (5xx, connection failures, timeouts,
  ambiguous outcomes);
* success: any answer, including permanent client errors (not found, invalid request) and auth
  errors: the provider is up, the request was wrong;
* no verdict: rate limiting (the provider is up and asking us to slow down, which the limiter
  handles), local rejections (circuit open, bulkhead full, deadline), cancellation, and
  exceptions that are not connector errors (bugs): they only give back a half-open probe slot.
"""

from __future__ import annotations

from connectors.clock import Clock
from connectors.errors import (
    AuthError,
    CircuitOpen,
    ConnectorError,
    PermanentError,
    RateLimited,
    TransientError,
)
from connectors.resilience.policies import BreakerPolicy
from connectors.state.base import (
    BreakerConfig,
    BreakerOutcome,
    BreakerPermit,
    BreakerSnapshot,
    BreakerState,
    BreakerTransition,
    StateBackend,
)

__all__ = ["CircuitBreaker", "outcome_of"]

# Built once: an open breaker answers every call with one of these.
_FAILING_FAST = {state: f"the circuit is {state.value}: failing fast" for state in BreakerState}


def outcome_of(error: BaseException | None) -> BreakerOutcome:
    """What a call's result means for the provider's health (``None`` = it returned)."""
    if error is None:
        return BreakerOutcome.SUCCESS
    if isinstance(error, TransientError):
        return BreakerOutcome.IGNORED if isinstance(error, RateLimited) else BreakerOutcome.FAILURE
    if isinstance(error, PermanentError | AuthError):
        return BreakerOutcome.SUCCESS
    return BreakerOutcome.IGNORED


class CircuitBreaker:
    """One breaker policy applied to any number of keys (tenant-scoped by the caller)."""

    __slots__ = ("_clock", "_slow_after", "_state", "config", "policy")

    def __init__(
        self,
        policy: BreakerPolicy,
        state: StateBackend,
        clock: Clock,
        *,
        probe_lease: float = 60.0,
    ) -> None:
        self.policy = policy
        self.config: BreakerConfig = policy.config(probe_lease=probe_lease)
        self._state = state
        self._clock = clock
        self._slow_after = policy.slow_call_duration

    async def acquire(self, key: str) -> BreakerPermit:
        """Ask to make a call; the permit says whether it may (never raises)."""
        return await self._state.breaker_acquire(
            key, config=self.config, now=self._clock.monotonic()
        )

    async def check(self, key: str) -> BreakerPermit:
        """Like :meth:`acquire` but raises :class:`~connectors.errors.CircuitOpen` on refusal."""
        permit = await self.acquire(key)
        if not permit.allowed:
            raise self.rejection(permit)
        return permit

    @staticmethod
    def rejection(permit: BreakerPermit) -> CircuitOpen:
        """The error for a refused permit."""
        retry_after = permit.retry_after
        if retry_after is None:
            message = "the circuit was opened by an operator; calls fail until it is reset"
        else:
            message = _FAILING_FAST[permit.state]
        return CircuitOpen(message, retry_after=retry_after)

    async def record(
        self,
        key: str,
        permit: BreakerPermit,
        outcome: BreakerOutcome,
        *,
        duration: float | None = None,
    ) -> BreakerTransition | None:
        """Report a permitted call's outcome (``duration`` decides whether it was slow)."""
        slow = (
            self._slow_after is not None
            and duration is not None
            and duration >= self._slow_after
            and outcome is not BreakerOutcome.IGNORED
        )
        return await self._state.breaker_record(
            key,
            config=self.config,
            permit=permit,
            outcome=outcome,
            slow=slow,
            now=self._clock.monotonic(),
        )

    async def record_error(
        self, key: str, permit: BreakerPermit, error: BaseException | None
    ) -> BreakerTransition | None:
        """Report a call's result by its error (``None`` = success), see :func:`outcome_of`."""
        return await self.record(key, permit, outcome_of(error))

    async def snapshot(self, key: str) -> BreakerSnapshot:
        return await self._state.breaker_snapshot(
            key, config=self.config, now=self._clock.monotonic()
        )

    async def reset(self, key: str) -> BreakerTransition | None:
        """Close the breaker and clear its counts."""
        return await self._state.breaker_reset(key, now=self._clock.monotonic())

    async def force_open(self, key: str) -> BreakerTransition | None:
        """Open the breaker until :meth:`reset` (isolate a misbehaving provider)."""
        return await self._state.breaker_force_open(key, now=self._clock.monotonic())


def counts_as_failure(error: ConnectorError) -> bool:
    """Whether ``error`` counts against the provider's health."""
    return outcome_of(error) is BreakerOutcome.FAILURE


__all__ += ["counts_as_failure"]

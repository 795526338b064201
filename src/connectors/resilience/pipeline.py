"""The resilience pipeline: every policy around one logical call, in one readable loop.

Outermost first, as in DESIGN.md::

    deadline                    the whole call, retries and waits included
    └── retry                   attempts, backoff / Retry-After, stop before the deadline
        └── circuit breaker     per tenant and breaker key; fail fast while open
            └── rate limiter    one reservation per attempt on every RateLimit
                └── bulkhead    per tenant in this process; not held during backoff
                    └── attempt timeout   min(attempt_timeout, deadline remaining)
                        └── fn(attempt)

Every state key starts with the call's tenant, so one tenant can never open, probe or drain
another tenant's breaker or limiter. The success path makes two state-backend calls (breaker
before and after), allocates the :class:`Attempt`, and calls no listener.

Errors: ``ConnectorError``s raised by ``fn`` get the context (connector, tenant, operation,
request id) filled in; other exceptions are bugs and propagate untouched, never retried. When the
retry policy gives up, the last error is raised (with a note saying why). ``DeadlineExceeded``
(chained to the last error) is raised when the deadline passed before an attempt could start,
while it waited for a bulkhead slot, or when it cut an attempt short.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from connectors.clock import Clock, system_clock
from connectors.context import CallContext, Deadline
from connectors.errors import (
    BulkheadFull,
    ConnectorError,
    DeadlineExceeded,
    RateLimited,
    Timeout,
)
from connectors.resilience import keys
from connectors.resilience.breaker import CircuitBreaker, outcome_of
from connectors.resilience.bulkhead import Bulkhead, Compartment
from connectors.resilience.events import (
    BreakerTransitionEvent,
    BulkheadRejectedEvent,
    PipelineListener,
    RateLimitWaitEvent,
    RetryEvent,
)
from connectors.resilience.limiter import RateLimiter
from connectors.resilience.policies import RateLimit, ResiliencePolicy
from connectors.resilience.retry import GiveUpReason, decide_retry
from connectors.resilience.testmode import is_testing
from connectors.resilience.timeout import timeout_scope
from connectors.state.base import (
    BreakerConfig,
    BreakerOutcome,
    BreakerPermit,
    BreakerSnapshot,
    BreakerTransition,
    RateRequest,
    StateBackend,
)

__all__ = ["Attempt", "Pipeline"]

T = TypeVar("T")

_log = logging.getLogger(__name__)

_SUCCESS: Final = BreakerOutcome.SUCCESS
_IGNORED: Final = BreakerOutcome.IGNORED
#: Bound on the per-tenant key caches (they are rebuilt on demand).
_CACHE_LIMIT: Final = 10_000


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try of the call: its 1-based ``number``, the seconds it may take, the context."""

    number: int
    #: Seconds this attempt may take: min(policy.attempt_timeout, deadline remaining).
    timeout: float
    ctx: CallContext


# A frozen dataclass's generated __init__ costs ~3x a plain object build; the pipeline makes one
# Attempt per attempt on the hot path, so it fills the slots directly (same object, same repr).
_new_object = object.__new__
_set_number = Attempt.__dict__["number"].__set__
_set_timeout = Attempt.__dict__["timeout"].__set__
_set_ctx = Attempt.__dict__["ctx"].__set__


def _attempt(number: int, timeout: float, ctx: CallContext) -> Attempt:
    attempt = _new_object(Attempt)
    _set_number(attempt, number)
    _set_timeout(attempt, timeout)
    _set_ctx(attempt, ctx)
    return attempt


class Pipeline:
    """Applies a :class:`ResiliencePolicy` to calls of one connector, for any tenant."""

    __slots__ = (
        "_attempt_timeout",
        "_bconfig",
        "_bkeys",
        "_bkeys_named",
        "_breaker",
        "_bulkhead",
        "_clock",
        "_has_limits",
        "_limiter",
        "_listener",
        "_name",
        "_policy",
        "_policy_deadline",
        "_policy_requests",
        "_retry",
        "_rl_keys",
        "_slow_after",
        "_state",
    )

    def __init__(
        self,
        name: str,
        policy: ResiliencePolicy,
        *,
        state: StateBackend,
        clock: Clock = system_clock,
        listener: PipelineListener | None = None,
    ) -> None:
        self._name = name
        self._policy = policy
        self._state = state
        self._clock = clock
        self._listener = listener
        self._retry = policy.retry
        self._attempt_timeout = policy.attempt_timeout
        self._policy_deadline = policy.deadline
        # A probe that has not reported back within its attempt's time has died with its caller.
        lease = policy.attempt_timeout + 1.0
        if math.isinf(lease):
            lease = max(60.0, 2 * policy.breaker.reset_timeout)
        self._breaker = CircuitBreaker(policy.breaker, state, clock, probe_lease=lease)
        self._bconfig = self._breaker.config
        self._slow_after = policy.breaker.slow_call_duration
        self._bulkhead = Bulkhead(policy.bulkhead, clock)
        self._limiter = RateLimiter(state, clock)
        self._bkeys: dict[str, str] = {}
        self._bkeys_named: dict[tuple[str, str], str] = {}
        self._rl_keys: dict[tuple[str, str], str] = {}
        self._policy_requests: dict[str, tuple[RateRequest, ...]] = {}
        self._has_limits = bool(policy.rate_limits)

    def __repr__(self) -> str:
        return f"<Pipeline {self._name!r}>"

    @property
    def name(self) -> str:
        """The connector name (the ``pipeline`` label of events)."""
        return self._name

    @property
    def policy(self) -> ResiliencePolicy:
        return self._policy

    # --- the call ----------------------------------------------------------------------------

    async def execute(
        self,
        fn: Callable[[Attempt], Awaitable[T]],
        *,
        ctx: CallContext,
        operation: str,
        idempotent: bool,
        rate_limits: Sequence[RateLimit] = (),
        breaker_key: str | None = None,
        enforce_timeout: bool = True,
    ) -> T:
        """Run ``fn`` once per attempt under the policy; return its first successful result.

        ``fn`` receives an :class:`Attempt`; with ``enforce_timeout=False`` it must bound itself
        by ``attempt.timeout`` (e.g. pass it to the transport) and raise
        :class:`~connectors.errors.Timeout` when that runs out.
        """
        clock = self._clock
        state = self._state
        start = clock.monotonic()
        deadline = ctx.deadline
        deadline_at = math.inf if deadline is None else deadline.at
        if self._policy_deadline is not None:
            own = start + self._policy_deadline
            if own < deadline_at:
                deadline_at = own
                ctx = ctx.with_deadline(Deadline(own, clock))
        tenant = ctx.tenant
        if breaker_key is None:
            bkey = self._bkeys.get(tenant) or self._breaker_key(tenant, None)
        else:
            bkey = self._breaker_key(tenant, breaker_key)
        requests = self._requests(tenant, rate_limits) if rate_limits or self._has_limits else ()
        bconfig = self._bconfig
        attempt_timeout = self._attempt_timeout
        bulkhead = self._bulkhead
        slow_after = self._slow_after
        number = 0
        last: ConnectorError | None = None
        now = start
        while True:
            number += 1
            if number > 1:
                now = clock.monotonic()
            if now >= deadline_at:
                raise self._deadline(
                    f"the deadline passed before attempt {number} could start", ctx, operation
                ) from last
            permit = await state.breaker_acquire(bkey, config=bconfig, now=now)
            if permit.transition is not None:
                self._transition(permit.transition, bkey, ctx, operation)
            if not permit.allowed:
                raise self._breaker.rejection(permit).with_context(
                    connector=self._name,
                    tenant=tenant,
                    operation=operation,
                    request_id=ctx.request_id,
                ) from last
            # Local stages: a rejection here says nothing about the provider.
            started = now
            try:
                if requests:
                    await self._rate_wait(requests, rate_limits, deadline_at, ctx, operation)
                    started = clock.monotonic()
                comp = bulkhead.try_acquire(tenant)
                if comp is None:
                    comp = await self._bulkhead_wait(tenant, deadline_at, ctx, operation)
                    started = clock.monotonic()
            except BaseException:
                await self._release_permit(bkey, bconfig, permit)
                raise
            budget = deadline_at - started
            deadline_bound = budget < attempt_timeout
            if not deadline_bound:
                budget = attempt_timeout
            try:
                try:
                    if budget <= 0.0:
                        raise Timeout("no time was left for the attempt", request_sent=False)
                    if enforce_timeout:
                        if budget == math.inf:
                            result = await fn(_attempt(number, budget, ctx))
                        else:
                            scope = timeout_scope(clock, budget)
                            try:
                                async with scope:
                                    result = await fn(_attempt(number, budget, ctx))
                            except TimeoutError:
                                if not scope.expired():
                                    raise
                                raise Timeout(
                                    f"attempt {number} timed out after {budget:.3f}s",
                                    request_sent=True,
                                ) from None
                    else:
                        result = await fn(_attempt(number, budget, ctx))
                finally:
                    bulkhead.release(comp)
            except ConnectorError as exc:
                error = exc
            except BaseException:
                await self._release_permit(bkey, bconfig, permit)
                raise
            else:
                if slow_after is None:
                    if not permit.report_success:
                        return result
                    slow = False
                    ended = clock.monotonic()
                else:
                    ended = clock.monotonic()
                    slow = ended - started >= slow_after
                    if not slow and not permit.report_success:
                        return result
                transition = await state.breaker_record(
                    bkey, config=bconfig, permit=permit, outcome=_SUCCESS, slow=slow, now=ended
                )
                if transition is not None:
                    self._transition(transition, bkey, ctx, operation)
                return result
            last = await self._failed(
                error,
                number=number,
                permit_key=bkey,
                permit=permit,
                requests=requests,
                ctx=ctx,
                operation=operation,
                idempotent=idempotent,
                start=start,
                started=started,
                deadline_at=deadline_at,
                deadline_bound=deadline_bound,
            )

    async def _failed(
        self,
        error: ConnectorError,
        *,
        number: int,
        permit_key: str,
        permit: BreakerPermit,
        requests: tuple[RateRequest, ...],
        ctx: CallContext,
        operation: str,
        idempotent: bool,
        start: float,
        started: float,
        deadline_at: float,
        deadline_bound: bool,
    ) -> ConnectorError:
        """Record a failed attempt and either wait for the next one or raise."""
        clock = self._clock
        tenant = ctx.tenant
        error.with_context(
            connector=self._name, tenant=tenant, operation=operation, request_id=ctx.request_id
        )
        ended = clock.monotonic()
        cut_by_deadline = deadline_bound and isinstance(error, Timeout)
        outcome = _IGNORED if cut_by_deadline else outcome_of(error)
        transition = await self._state.breaker_record(
            permit_key,
            config=self._bconfig,
            permit=permit,
            outcome=outcome,
            slow=(
                self._slow_after is not None
                and outcome is not _IGNORED
                and ended - started >= self._slow_after
            ),
            now=ended,
        )
        if transition is not None:
            self._transition(transition, permit_key, ctx, operation)
        if cut_by_deadline:
            raise self._deadline(
                f"the deadline cut attempt {number} short", ctx, operation
            ) from error
        if requests and isinstance(error, RateLimited) and error.retry_after:
            for request in requests:
                await self._limiter.block(request.key, error.retry_after)
        decision = decide_retry(
            self._retry,
            error,
            attempt=number,
            idempotent=idempotent,
            elapsed=ended - start,
            remaining=deadline_at - ended,
        )
        if not decision.retry:
            if decision.reason in (GiveUpReason.DEADLINE, GiveUpReason.MAX_ELAPSED):
                error.add_note(
                    f"not retried after attempt {number}: the next wait of "
                    f"{decision.delay:.3f}s would pass the {decision.reason.replace('_', ' ')}"
                )
            elif number > 1:
                error.add_note(f"gave up after {number} attempts ({decision.reason})")
            raise error
        listener = self._listener
        if listener is not None:
            self._notify(
                listener.on_retry,
                RetryEvent(
                    pipeline=self._name,
                    tenant=tenant,
                    operation=operation,
                    request_id=ctx.request_id,
                    attempt=number,
                    delay=decision.delay,
                    reason=decision.reason,
                    error=error,
                    from_retry_after=decision.from_retry_after,
                ),
            )
        if decision.delay > 0.0 and not is_testing():
            await clock.sleep(decision.delay)
        return error

    # --- local stages ------------------------------------------------------------------------

    async def _rate_wait(
        self,
        requests: tuple[RateRequest, ...],
        extra: Sequence[RateLimit],
        deadline_at: float,
        ctx: CallContext,
        operation: str,
    ) -> None:
        clock = self._clock
        decision = await self._limiter.reserve(requests, max_wait=deadline_at - clock.monotonic())
        if decision.admitted and decision.wait <= 0.0:
            return
        names = tuple(limit.key for limit in (*self._policy.rate_limits, *extra))
        listener = self._listener
        if listener is not None:
            self._notify(
                listener.on_rate_limit_wait,
                RateLimitWaitEvent(
                    pipeline=self._name,
                    tenant=ctx.tenant,
                    operation=operation,
                    request_id=ctx.request_id,
                    keys=names,
                    wait=decision.wait,
                    admitted=decision.admitted,
                ),
            )
        if not decision.admitted:
            raise RateLimited(
                f"the rate limit {', '.join(names)} needs a {decision.wait:.3f}s wait, "
                "past the deadline",
                retry_after=decision.wait,
                quota=",".join(names),
                connector=self._name,
                tenant=ctx.tenant,
                operation=operation,
                request_id=ctx.request_id,
            )
        if not is_testing():
            await clock.sleep(decision.wait)

    async def _bulkhead_wait(
        self, tenant: str, deadline_at: float, ctx: CallContext, operation: str
    ) -> Compartment:
        remaining = deadline_at - self._clock.monotonic()
        max_wait = self._policy.bulkhead.max_wait
        by_max_wait = max_wait is not None and max_wait < remaining
        bound = max_wait if max_wait is not None and by_max_wait else remaining
        try:
            return await self._bulkhead.acquire(tenant, max_wait=bound)
        except BulkheadFull as err:
            self._bulkhead_rejected(tenant, ctx, operation, "queue_full")
            raise err.with_context(
                connector=self._name, tenant=tenant, operation=operation, request_id=ctx.request_id
            ) from None
        except TimeoutError:
            if by_max_wait:
                self._bulkhead_rejected(tenant, ctx, operation, "max_wait")
                raise BulkheadFull(
                    f"no bulkhead slot became free within {max_wait}s",
                    connector=self._name,
                    tenant=tenant,
                    operation=operation,
                    request_id=ctx.request_id,
                    hint="reduce concurrency or raise bulkhead.max_concurrent / max_wait",
                ) from None
            raise self._deadline(
                "the deadline passed while waiting for a bulkhead slot", ctx, operation
            ) from None

    def _bulkhead_rejected(self, tenant: str, ctx: CallContext, operation: str, why: str) -> None:
        listener = self._listener
        if listener is None:
            return
        in_flight, queued = self._bulkhead.stats(tenant)
        self._notify(
            listener.on_bulkhead_rejected,
            BulkheadRejectedEvent(
                pipeline=self._name,
                tenant=tenant,
                operation=operation,
                request_id=ctx.request_id,
                in_flight=in_flight,
                queued=queued,
                reason=why,
            ),
        )

    # --- helpers -----------------------------------------------------------------------------

    def _deadline(self, message: str, ctx: CallContext, operation: str) -> DeadlineExceeded:
        return DeadlineExceeded(
            message,
            connector=self._name,
            tenant=ctx.tenant,
            operation=operation,
            request_id=ctx.request_id,
        )

    def _breaker_key(self, tenant: str, breaker_key: str | None) -> str:
        if breaker_key is None:
            found = self._bkeys.get(tenant)
            if found is None:
                if len(self._bkeys) >= _CACHE_LIMIT:
                    self._bkeys.clear()
                found = self._bkeys[tenant] = keys.state_key(
                    tenant, keys.BREAKER, self._name, self._name
                )
            return found
        named = self._bkeys_named.get((tenant, breaker_key))
        if named is None:
            if len(self._bkeys_named) >= _CACHE_LIMIT:
                self._bkeys_named.clear()
            named = self._bkeys_named[(tenant, breaker_key)] = keys.state_key(
                tenant, keys.BREAKER, self._name, breaker_key
            )
        return named

    def _rate_key(self, tenant: str, name: str) -> str:
        found = self._rl_keys.get((tenant, name))
        if found is None:
            if len(self._rl_keys) >= _CACHE_LIMIT:
                self._rl_keys.clear()
            found = self._rl_keys[(tenant, name)] = keys.state_key(
                tenant, keys.RATE_LIMIT, self._name, name
            )
        return found

    def _requests(self, tenant: str, extra: Sequence[RateLimit]) -> tuple[RateRequest, ...]:
        base = self._policy_requests.get(tenant)
        if base is None:
            if len(self._policy_requests) >= _CACHE_LIMIT:
                self._policy_requests.clear()
            base = self._policy_requests[tenant] = tuple(
                RateRequest(self._rate_key(tenant, limit.key), limit.rate, limit.burst, limit.cost)
                for limit in self._policy.rate_limits
            )
        if not extra:
            return base
        return base + tuple(
            RateRequest(self._rate_key(tenant, limit.key), limit.rate, limit.burst, limit.cost)
            for limit in extra
        )

    def _transition(
        self, transition: BreakerTransition, bkey: str, ctx: CallContext, operation: str
    ) -> None:
        listener = self._listener
        if listener is None:
            return
        self._notify(
            listener.on_breaker_transition,
            BreakerTransitionEvent(
                pipeline=self._name,
                tenant=ctx.tenant,
                breaker_key=bkey,
                from_state=transition.from_state,
                to_state=transition.to_state,
                operation=operation,
                request_id=ctx.request_id,
            ),
        )

    @staticmethod
    def _notify(method: Callable[[T], None], event: T) -> None:
        try:
            method(event)
        except Exception:
            _log.exception("a resilience listener failed on %s", type(event).__name__)

    # --- operations on state -----------------------------------------------------------------

    async def _release_permit(
        self, bkey: str, bconfig: BreakerConfig, permit: BreakerPermit
    ) -> None:
        """Give back a breaker permit without a verdict (the attempt never reached the provider,
        or was cancelled): it neither trips nor resets the breaker."""
        await self._state.breaker_record(
            bkey,
            config=bconfig,
            permit=permit,
            outcome=_IGNORED,
            slow=False,
            now=self._clock.monotonic(),
        )

    async def breaker_snapshot(
        self, tenant: str, breaker_key: str | None = None
    ) -> BreakerSnapshot:
        """The tenant's breaker state for this connector (or for ``breaker_key``)."""
        return await self._breaker.snapshot(self._breaker_key(tenant, breaker_key))

    async def reset_breaker(self, tenant: str, breaker_key: str | None = None) -> None:
        """Close the tenant's breaker and clear its counts (operator action)."""
        bkey = self._breaker_key(tenant, breaker_key)
        transition = await self._breaker.reset(bkey)
        if transition is not None:
            self._transition_for(tenant, transition, bkey)

    async def force_open_breaker(self, tenant: str, breaker_key: str | None = None) -> None:
        """Open the tenant's breaker until :meth:`reset_breaker` (isolate the provider)."""
        bkey = self._breaker_key(tenant, breaker_key)
        transition = await self._breaker.force_open(bkey)
        if transition is not None:
            self._transition_for(tenant, transition, bkey)

    def _transition_for(self, tenant: str, transition: BreakerTransition, bkey: str) -> None:
        listener = self._listener
        if listener is not None:
            self._notify(
                listener.on_breaker_transition,
                BreakerTransitionEvent(
                    pipeline=self._name,
                    tenant=tenant,
                    breaker_key=bkey,
                    from_state=transition.from_state,
                    to_state=transition.to_state,
                ),
            )

    async def block_rate_limit(self, tenant: str, key: str, seconds: float) -> None:
        """Admit nothing on the tenant's rate limit ``key`` for ``seconds`` (server feedback)."""
        await self._limiter.block(self._rate_key(tenant, key), seconds)

    async def rate_limit_remaining(self, tenant: str, limit: RateLimit) -> float:
        """Units the tenant could take on ``limit`` right now (for gauges)."""
        return await self._limiter.remaining(
            RateRequest(self._rate_key(tenant, limit.key), limit.rate, limit.burst, limit.cost)
        )

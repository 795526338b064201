"""The in-memory state backend: one process, the default when no Redis is configured.

Each operation is a synchronous update inside its coroutine, so it is atomic with respect to the
event loop; a ``threading.Lock`` (held around the pure update only, never across an ``await``)
makes it safe when several threads with their own event loops share one backend (the sync face).
Expired rate-limit entries, leases, seen ids and counters are purged lazily: a dictionary is
swept when it has doubled since its last sweep, so memory stays proportional to live keys and the
sweep costs O(1) per operation amortised.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

from connectors.state.base import (
    BreakerConfig,
    BreakerOutcome,
    BreakerPermit,
    BreakerSnapshot,
    BreakerState,
    BreakerTransition,
    RateDecision,
    RateRequest,
)

__all__ = ["MemoryStateBackend"]

_CLOSED: Final = BreakerState.CLOSED
_OPEN: Final = BreakerState.OPEN
_HALF_OPEN: Final = BreakerState.HALF_OPEN
_FORCED_OPEN: Final = BreakerState.FORCED_OPEN
_FAILURE: Final = BreakerOutcome.FAILURE
_IGNORED: Final = BreakerOutcome.IGNORED

#: Buckets of the ratio mode's sliding window (the window moves in steps of window/_BUCKETS).
_BUCKETS: Final = 10
_MIN_SWEEP: Final = 1024

_ADMIT_NOW: Final = RateDecision(admitted=True, wait=0.0)
_FRESH_PERMIT: Final = BreakerPermit(
    allowed=True, state=_CLOSED, generation=0, report_success=False
)
_FRESH_RATIO_PERMIT: Final = BreakerPermit(allowed=True, state=_CLOSED, generation=0)

V = TypeVar("V")


class _Breaker:
    """One breaker's mutable state (only touched under the backend's lock)."""

    __slots__ = (
        "bucket_epoch",
        "bucket_width",
        "calls",
        "clean_permit",
        "consecutive",
        "failures",
        "generation",
        "in_flight",
        "last_epoch",
        "open_until",
        "opened_at",
        "permit",
        "probe_deadline",
        "slow",
        "state",
        "successes",
        "total_calls",
        "total_failures",
        "total_slow",
    )

    def __init__(self) -> None:
        self.state = _CLOSED
        self.generation = 0
        self.permit = BreakerPermit(allowed=True, state=_CLOSED, generation=0)
        self.clean_permit = _FRESH_PERMIT
        self.consecutive = 0
        self.opened_at: float | None = None
        self.open_until = 0.0
        self.in_flight = 0
        self.successes = 0
        self.probe_deadline = 0.0
        self.bucket_width = 0.0
        self.last_epoch = 0
        self.bucket_epoch = [-1] * _BUCKETS
        self.calls = [0] * _BUCKETS
        self.failures = [0] * _BUCKETS
        self.slow = [0] * _BUCKETS
        self.total_calls = 0
        self.total_failures = 0
        self.total_slow = 0

    # --- the ratio window --------------------------------------------------------------------

    def clear_window(self) -> None:
        self.bucket_epoch = [-1] * _BUCKETS
        self.calls = [0] * _BUCKETS
        self.failures = [0] * _BUCKETS
        self.slow = [0] * _BUCKETS
        self.total_calls = self.total_failures = self.total_slow = 0

    def advance(self, window: float, now: float) -> int:
        """Drop the buckets that slid out of the window; return the current bucket index."""
        width = window / _BUCKETS
        if width != self.bucket_width:
            self.bucket_width = width
            self.clear_window()
            self.last_epoch = int(now // width)
        epoch = int(now // width)
        if epoch > self.last_epoch:
            if epoch - self.last_epoch >= _BUCKETS:
                self.clear_window()
            else:
                for e in range(self.last_epoch + 1, epoch + 1):
                    self._drop(e % _BUCKETS)
            self.last_epoch = epoch
        idx = epoch % _BUCKETS
        if self.bucket_epoch[idx] != epoch:
            self._drop(idx)
            self.bucket_epoch[idx] = epoch
        return idx

    def _drop(self, idx: int) -> None:
        self.total_calls -= self.calls[idx]
        self.total_failures -= self.failures[idx]
        self.total_slow -= self.slow[idx]
        self.calls[idx] = self.failures[idx] = self.slow[idx] = 0
        self.bucket_epoch[idx] = -1

    # --- transitions -------------------------------------------------------------------------

    def move(self, to: BreakerState, config: BreakerConfig, now: float) -> BreakerTransition:
        before = self.state
        self.state = to
        self.generation += 1
        self.in_flight = 0
        self.successes = 0
        if to is _CLOSED:
            self.consecutive = 0
            self.opened_at = None
            self.clear_window()
            self.permit = BreakerPermit(allowed=True, state=_CLOSED, generation=self.generation)
            self.clean_permit = BreakerPermit(
                allowed=True, state=_CLOSED, generation=self.generation, report_success=False
            )
        elif to is _OPEN or to is _FORCED_OPEN:
            self.opened_at = now
            self.open_until = now + config.reset_timeout if to is _OPEN else math.inf
            self.consecutive = 0
            self.clear_window()
        else:  # half-open
            self.probe_deadline = now + config.probe_lease
        return BreakerTransition(before, to)


class MemoryStateBackend:
    """:class:`~connectors.state.base.StateBackend` in process memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rates: dict[str, list[float]] = {}  # key -> [tat, blocked_until]
        self._breakers: dict[str, _Breaker] = {}
        self._locks: dict[str, tuple[str, int, float]] = {}  # key -> (owner, token, expires)
        self._fence = itertools.count(1)
        self._seen: dict[str, float] = {}  # key -> expires
        self._counters: dict[str, list[float]] = {}  # key -> [value, expires]
        self._sweep_at: dict[str, int] = {}

    def __repr__(self) -> str:
        return (
            f"<MemoryStateBackend rates={len(self._rates)} breakers={len(self._breakers)} "
            f"locks={len(self._locks)} seen={len(self._seen)} counters={len(self._counters)}>"
        )

    def _sweep(self, name: str, table: dict[str, V], expired: Callable[[V], bool]) -> None:
        """Purge expired entries once ``table`` has doubled since its last sweep."""
        if len(table) <= self._sweep_at.get(name, _MIN_SWEEP):
            return
        for key in [k for k, v in table.items() if expired(v)]:
            del table[key]
        self._sweep_at[name] = max(_MIN_SWEEP, 2 * len(table))

    # --- rate limiting (GCRA) ----------------------------------------------------------------

    async def rate_acquire(
        self, key: str, *, rate: float, burst: float, cost: float, max_wait: float, now: float
    ) -> RateDecision:
        with self._lock:
            entry = self._rates.get(key)
            if entry is None:
                self._sweep("rates", self._rates, lambda e: e[0] <= now and e[1] <= now)
                self._rates[key] = [now + cost / rate, 0.0]
                return _ADMIT_NOW
            tat = entry[0]
            start = max(now, entry[1], tat - (burst - cost) / rate)
            wait = start - now
            if wait > max_wait:
                return RateDecision(admitted=False, wait=wait)
            entry[0] = max(tat, start) + cost / rate
            return _ADMIT_NOW if wait <= 0.0 else RateDecision(admitted=True, wait=wait)

    async def rate_acquire_many(
        self, requests: Sequence[RateRequest], *, max_wait: float, now: float
    ) -> RateDecision:
        # Requests for the same key add up; each key keeps its own rate and burst.
        merged: dict[str, tuple[float, float, float]] = {}
        for r in requests:
            prior = merged.get(r.key)
            merged[r.key] = (r.rate, r.burst, r.cost + (prior[2] if prior else 0.0))
        with self._lock:
            rates = self._rates
            start = now
            for key, (rate, burst, cost) in merged.items():
                entry = rates.get(key)
                if entry is not None:
                    start = max(start, entry[1], entry[0] - (burst - cost) / rate)
            wait = start - now
            if wait > max_wait:
                return RateDecision(admitted=False, wait=wait)
            self._sweep("rates", rates, lambda e: e[0] <= now and e[1] <= now)
            for key, (rate, _burst, cost) in merged.items():
                entry = rates.get(key)
                if entry is None:
                    rates[key] = [start + cost / rate, 0.0]
                else:
                    entry[0] = max(entry[0], start) + cost / rate
            return _ADMIT_NOW if wait <= 0.0 else RateDecision(admitted=True, wait=wait)

    async def rate_block(self, key: str, *, seconds: float, now: float) -> None:
        with self._lock:
            entry = self._rates.get(key)
            if entry is None:
                self._rates[key] = [now, now + seconds]
            else:
                entry[1] = max(entry[1], now + seconds)

    async def rate_remaining(self, key: str, *, rate: float, burst: float, now: float) -> float:
        with self._lock:
            entry = self._rates.get(key)
            if entry is None:
                return burst
            if entry[1] > now:
                return 0.0
            return min(burst, max(0.0, burst - max(0.0, entry[0] - now) * rate))

    # --- circuit breaker ---------------------------------------------------------------------

    async def breaker_acquire(
        self, key: str, *, config: BreakerConfig, now: float
    ) -> BreakerPermit:
        with self._lock:
            b = self._breakers.get(key)
            if b is None:
                return _FRESH_PERMIT if config.mode == "consecutive" else _FRESH_RATIO_PERMIT
            state = b.state
            if state is _CLOSED:
                if b.consecutive == 0 and config.mode == "consecutive":
                    return b.clean_permit
                return b.permit
            transition = None
            if state is _OPEN:
                if now < b.open_until:
                    return BreakerPermit.refusal(_OPEN, b.open_until - now)
                transition = b.move(_HALF_OPEN, config, now)
            elif state is _FORCED_OPEN:
                return BreakerPermit.refusal(_FORCED_OPEN, None)
            if b.in_flight + b.successes >= config.half_open_max_calls:
                if b.in_flight == 0 or now < b.probe_deadline:
                    return BreakerPermit(
                        False, _HALF_OPEN, retry_after=max(0.0, b.probe_deadline - now)
                    )
                # The probes in flight outlived their lease (their caller died): start over.
                b.generation += 1
                b.in_flight = b.successes = 0
                b.probe_deadline = now + config.probe_lease
            b.in_flight += 1
            return BreakerPermit(
                True, _HALF_OPEN, is_probe=True, generation=b.generation, transition=transition
            )

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
        with self._lock:
            b = self._breakers.get(key)
            if b is None:
                if permit.generation != 0 or outcome is _IGNORED:
                    return None
                if config.mode == "consecutive" and not slow and outcome is not _FAILURE:
                    return None  # a success on a fresh breaker changes nothing
                b = self._breakers[key] = _Breaker()
            if permit.generation != b.generation or outcome is _IGNORED:
                if outcome is _IGNORED and permit.is_probe and permit.generation == b.generation:
                    b.in_flight -= 1
                return None
            bad = outcome is _FAILURE
            if b.state is _CLOSED:
                if config.mode == "consecutive":
                    if bad or slow:
                        b.consecutive += 1
                        if b.consecutive >= config.failure_threshold:
                            return b.move(_OPEN, config, now)
                    else:
                        b.consecutive = 0
                    return None
                return self._record_ratio(b, config, bad, slow, now)
            if b.state is _HALF_OPEN and permit.is_probe:
                b.in_flight -= 1
                if bad or slow:
                    return b.move(_OPEN, config, now)
                b.successes += 1
                if b.successes >= config.half_open_max_calls:
                    return b.move(_CLOSED, config, now)
            return None

    @staticmethod
    def _record_ratio(
        b: _Breaker, config: BreakerConfig, bad: bool, slow: bool, now: float
    ) -> BreakerTransition | None:
        idx = b.advance(config.window, now)
        b.calls[idx] += 1
        b.total_calls += 1
        if bad:
            b.failures[idx] += 1
            b.total_failures += 1
            b.consecutive += 1
        else:
            b.consecutive = 0
        if slow:
            b.slow[idx] += 1
            b.total_slow += 1
        calls = b.total_calls
        if calls >= config.minimum_calls and (
            b.total_failures >= config.failure_ratio * calls
            or b.total_slow >= config.slow_call_ratio * calls
        ):
            return b.move(_OPEN, config, now)
        return None

    async def breaker_snapshot(
        self, key: str, *, config: BreakerConfig, now: float
    ) -> BreakerSnapshot:
        with self._lock:
            b = self._breakers.get(key)
            if b is None:
                return BreakerSnapshot(_CLOSED, 0, 0, 0, 0, None, None, 0)
            if b.state is _CLOSED and config.mode == "ratio":
                b.advance(config.window, now)
            state = b.state
            if state is _OPEN and now >= b.open_until:
                state = _HALF_OPEN  # what the next call will see
            return BreakerSnapshot(
                state=state,
                calls=b.total_calls,
                failures=b.total_failures,
                slow_calls=b.total_slow,
                consecutive_failures=b.consecutive,
                opened_at=b.opened_at,
                next_probe_at=b.open_until if b.state is _OPEN else None,
                half_open_in_flight=b.in_flight if b.state is _HALF_OPEN else 0,
            )

    async def breaker_reset(self, key: str, *, now: float) -> BreakerTransition | None:
        with self._lock:
            b = self._breakers.get(key)
            if b is None:
                return None
            if b.state is _CLOSED:
                b.consecutive = 0
                b.clear_window()
                return None
            return b.move(_CLOSED, BreakerConfig(), now)

    async def breaker_force_open(self, key: str, *, now: float) -> BreakerTransition | None:
        with self._lock:
            b = self._breakers.get(key)
            if b is None:
                b = self._breakers[key] = _Breaker()
            if b.state is _FORCED_OPEN:
                return None
            return b.move(_FORCED_OPEN, BreakerConfig(), now)

    # --- leases ------------------------------------------------------------------------------

    async def lock_acquire(self, key: str, *, owner: str, ttl: float, now: float) -> int | None:
        with self._lock:
            held = self._locks.get(key)
            if held is not None and held[2] > now:
                if held[0] != owner:
                    return None
                self._locks[key] = (owner, held[1], now + ttl)
                return held[1]
            self._sweep("locks", self._locks, lambda h: h[2] <= now)
            token = next(self._fence)
            self._locks[key] = (owner, token, now + ttl)
            return token

    async def lock_release(self, key: str, *, owner: str, now: float | None = None) -> bool:
        with self._lock:
            held = self._locks.get(key)
            if held is None or held[0] != owner:
                return False
            del self._locks[key]
            return now is None or held[2] > now

    async def lock_extend(self, key: str, *, owner: str, ttl: float, now: float) -> bool:
        with self._lock:
            held = self._locks.get(key)
            if held is None or held[0] != owner or held[2] <= now:
                return False
            self._locks[key] = (owner, held[1], now + ttl)
            return True

    # --- seen ids and counters ---------------------------------------------------------------

    async def seen_add(self, key: str, *, ttl: float, now: float) -> bool:
        with self._lock:
            expires = self._seen.get(key)
            if expires is not None and expires > now:
                return False
            self._sweep("seen", self._seen, lambda e: e <= now)
            self._seen[key] = now + ttl
            return True

    async def incr(self, key: str, amount: int = 1, *, ttl: float, now: float) -> int:
        with self._lock:
            entry = self._counters.get(key)
            if entry is None or entry[1] <= now:
                self._sweep("counters", self._counters, lambda e: e[1] <= now)
                self._counters[key] = [float(amount), now + ttl]
                return amount
            entry[0] += amount
            return int(entry[0])

    async def counter_get(self, key: str, *, now: float) -> int:
        with self._lock:
            entry = self._counters.get(key)
            if entry is None or entry[1] <= now:
                return 0
            return int(entry[0])

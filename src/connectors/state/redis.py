"""The Redis state backend: one Lua script per operation, shared by every process.

Each :class:`~connectors.state.base.StateBackend` operation is one ``EVALSHA`` of a script in
``connectors/state/lua/`` (a ``NOSCRIPT`` after a restart or ``SCRIPT FLUSH`` loads it
transparently), so every step is atomic across processes and machines and costs one round trip.
The scripts are ports of :mod:`connectors.state.memory` and give the same answers for the same
inputs. Commands are sent pre-encoded on connections borrowed from the client's pool, skipping
redis-py's per-command dispatch (see :mod:`connectors.state.redis_wire`): a rate-limit decision
then costs about 1.25x a redis-py ``PING`` (``benchmarks/distributed.py``).

Clock (``clock=``):

* ``"server"`` (default): scripts read Redis ``TIME``; every process shares one clock, so skew
  between hosts cannot loosen a limit. The callers' ``now`` is then only used to express the
  absolute times of :meth:`breaker_snapshot` on the caller's scale.
* ``"client"``: scripts use the caller's ``now`` (for managed Redis that rejects ``TIME`` in
  scripts, e.g. ElastiCache Serverless). Every process must then pass ``now`` on one shared scale:
  the limiter and breaker pass ``Clock.monotonic()``, which on Linux is shared by the processes of
  one host but not across hosts; across hosts give ``client_time=`` (e.g. ``SystemClock().time``
  on NTP-disciplined hosts), which replaces the callers' ``now``.

Key layout (``prefix`` defaults to ``connectors:``; ``<key>`` is the caller's key, built by
:func:`connectors.resilience.keys.state_key` as ``{tenant}:kind:connector:name``)::

    <prefix>rl:<key>    string "<theoretical arrival time> <blocked until>"       (GCRA bucket)
    <prefix>cb:<key>    string, MessagePack of the breaker state (see lua/_breaker.lua)
    <prefix>lk:<key>    hash  f = fencing counter (HINCRBY), o = owner, e = lease expiry
    <prefix>seen:<key>  string, the logical expiry (SET ... PX)
    <prefix>ctr:<key>   hash  v = value (HINCRBY), e = logical expiry

The prefix holds no braces, so the caller's hash tag (``{tenant}``) is the key's first one and
every key of one tenant lands in one Redis Cluster slot: the multi-key
:meth:`rate_acquire_many` stays legal on a cluster as long as its keys share the tag (keys built by
``state_key`` for one tenant always do). Every key has a TTL: rate buckets and seen ids live until
their logical expiry plus ``expiry_grace``; counters from their first increment; breakers
``breaker_ttl`` after their last change (a forced-open breaker ``forced_open_ttl``); leases, and
the fencing counter they carry, ``lock_keep`` after their last acquisition.

When Redis cannot be reached (connection refused or lost, timeout, a replica that is read-only
after a failover, out of memory): ``on_unavailable="fail_open"`` serves the call from a local
:class:`~connectors.state.memory.MemoryStateBackend` (limits and breakers then hold per process),
calls ``on_fallback(operation)`` for each such call (the Hub counts
``connector_state_fallback_total``) and logs one warning per outage; ``"fail_closed"`` raises
:class:`~connectors.errors.ServiceUnavailable`. Redis is tried again at most every
``probe_interval`` seconds, and used again as soon as it answers.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import weakref
from collections.abc import Awaitable, Callable, Sequence
from typing import Final, Literal, TypeVar
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.exceptions import (
    RedisError,
)

from connectors.clock import Clock, system_clock
from connectors.errors import ServiceUnavailable
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
from connectors.state.redis_replies import (
    is_outage,
    parse_bool,
    parse_decision,
    parse_float,
    parse_int,
    parse_none,
    parse_optional_int,
    parse_permit,
    parse_transition,
    pool_exhausted,
    text,
)
from connectors.state.redis_wire import ScriptClient, bulk, connect, script_named
from connectors.state.redis_wire import script_source as script_source  # re-exported

__all__ = ["ClockSource", "RedisStateBackend", "Unavailable"]

_log = logging.getLogger("connectors.state.redis")

ClockSource = Literal["server", "client"]
Unavailable = Literal["fail_open", "fail_closed"]
R = TypeVar("R")

#: Bound on the per-backend caches of encoded arguments (cleared when full).
_CACHE_LIMIT: Final = 4096
_HUGE: Final = "1e308"  # stands for an infinite bound inside Lua


def _num(value: float) -> str:
    """A float as text that Lua's ``tonumber`` reads back exactly (infinity as a huge bound)."""
    if math.isinf(value):
        return _HUGE if value > 0 else "-" + _HUGE
    return repr(float(value))


_SERVER_CLOCK: Final = bulk("server")
_NO_BOUND: Final = bulk(_HUGE)


def _local_rate(
    key: str, rate: float, burst: float, cost: float, max_wait: float, now: float
) -> Callable[[StateBackend], Awaitable[RateDecision]]:
    """rate_acquire on the fallback backend (when Redis is unreachable)."""

    def local(backend: StateBackend) -> Awaitable[RateDecision]:
        return backend.rate_acquire(
            key, rate=rate, burst=burst, cost=cost, max_wait=max_wait, now=now
        )

    return local


class RedisStateBackend:
    """:class:`~connectors.state.base.StateBackend` in Redis (see the module docstring)."""

    def __init__(
        self,
        url: str | None = None,
        *,
        client: aioredis.Redis | None = None,
        prefix: str = "connectors:",
        clock: ClockSource = "server",
        client_time: Callable[[], float] | None = None,
        on_unavailable: Unavailable = "fail_open",
        fallback: StateBackend | None = None,
        on_fallback: Callable[[str], None] | None = None,
        probe_interval: float = 5.0,
        timer: Clock = system_clock,
        socket_timeout: float = 2.0,
        max_connections: int = 64,
        breaker_ttl: float = 86_400.0,
        forced_open_ttl: float = 30 * 86_400.0,
        lock_keep: float = 7 * 86_400.0,
        expiry_grace: float = 60.0,
        client_factory: Callable[[], aioredis.Redis] | None = None,
    ) -> None:
        if sum(x is not None for x in (url, client, client_factory)) != 1:
            raise ValueError(
                "give exactly one of url= (a redis:// URL), client= or client_factory="
            )
        if clock not in ("server", "client"):
            raise ValueError(f"clock must be 'server' or 'client', not {clock!r}")
        if on_unavailable not in ("fail_open", "fail_closed"):
            raise ValueError(
                f"on_unavailable must be 'fail_open' or 'fail_closed', not {on_unavailable!r}"
            )
        if "{" in prefix or "}" in prefix:
            raise ValueError("the key prefix must not contain braces (it would move the hash tag)")
        if probe_interval < 0 or expiry_grace < 0:
            raise ValueError("probe_interval and expiry_grace must be >= 0")
        self._url = url
        self._fixed = ScriptClient(client) if client is not None else None
        self._factory = client_factory or (
            lambda: connect(url or "", socket_timeout, max_connections)
        )
        self._clients: weakref.WeakKeyDictionary[object, ScriptClient] = weakref.WeakKeyDictionary()
        self._clients_lock = threading.Lock()
        self.prefix = prefix
        self.clock: ClockSource = clock
        self._client_time = client_time
        self.on_unavailable: Unavailable = on_unavailable
        self.fallback: StateBackend = fallback if fallback is not None else MemoryStateBackend()
        self.on_fallback = on_fallback
        self.probe_interval = probe_interval
        self._timer = timer
        self._breaker_ttl = breaker_ttl
        self._forced_ttl = _num(forced_open_ttl)
        self._keep = _num(lock_keep)
        self._grace = _num(expiry_grace)
        self._configs: dict[BreakerConfig, tuple[str, ...]] = {}
        #: Pre-encoded RESP arguments of rate_acquire: (rate, burst, cost) and bucket keys.
        self._rates: dict[tuple[float, float, float], bytes] = {}
        self._buckets: dict[str, bytes] = {}
        self._grace_arg = bulk(self._grace)
        self._rate_script = script_named("rate_acquire")
        self._rate_head = self._rate_script.head(1, 6)  # one key, six arguments
        #: Whether Redis is considered down, and when to try it again (timer's monotonic scale).
        self.down = False
        self._retry_at = 0.0
        #: Calls served by the fallback (fail-open) or refused (fail-closed) since creation.
        self.fallback_calls = 0
        self.outages = 0

    def __repr__(self) -> str:
        where = "client"
        if self._url is not None:  # host and port only: the URL may carry a password
            parts = urlsplit(self._url)
            where = f"{parts.scheme}://{parts.hostname or ''}:{parts.port or ''}"
        return (
            f"<RedisStateBackend {where} prefix={self.prefix!r} clock={self.clock} "
            f"on_unavailable={self.on_unavailable} down={self.down}>"
        )

    # --- plumbing ------------------------------------------------------------------------------

    def _client(self) -> ScriptClient:
        if self._fixed is not None:
            return self._fixed
        loop = asyncio.get_running_loop()
        found = self._clients.get(loop)
        if found is None:
            with self._clients_lock:
                found = self._clients.get(loop)
                if found is None:
                    found = ScriptClient(self._factory())
                    self._clients[loop] = found
        return found

    def _now(self, now: float) -> str:
        if self.clock == "server":
            return "server"
        if self._client_time is not None:
            return _num(self._client_time())
        return _num(now)

    def _shifts_time(self) -> bool:
        """Whether script times are on another scale than the callers' ``now``."""
        return self.clock == "server" or self._client_time is not None

    async def _run(
        self,
        operation: str,
        keys: Sequence[str],
        args: Sequence[str],
        local: Callable[[StateBackend], Awaitable[R]],
        parse: Callable[[object], R],
    ) -> R:
        """Run the script named ``operation`` in Redis, or apply the outage policy when Redis
        is unreachable (``local`` runs the same operation on the fallback backend)."""
        if self.down and self._timer.monotonic() < self._retry_at:
            return await self._unavailable(operation, local, None)
        try:
            reply = await self._client().run(operation, keys, args)
        except (RedisError, OSError) as exc:
            return await self._failed(operation, exc, local)
        if self.down:
            self._came_back()
        return parse(reply)

    async def _failed(
        self,
        operation: str,
        exc: RedisError | OSError,
        local: Callable[[StateBackend], Awaitable[R]],
    ) -> R:
        """A script could not run: a full pool is local overload (``ServiceUnavailable``), an
        outage goes to the outage policy, anything else (a bug) propagates."""
        if pool_exhausted(exc):
            raise ServiceUnavailable(
                f"every Redis connection of this process is busy, so {operation} cannot run",
                hint="raise max_connections of the Redis state backend",
            ) from exc
        if not is_outage(exc):
            raise exc
        self._went_down(exc)
        return await self._unavailable(operation, local, exc)

    def _came_back(self) -> None:
        self.down = False
        _log.info("redis state backend is reachable again; shared state resumes")

    def _went_down(self, exc: BaseException) -> None:
        self._retry_at = self._timer.monotonic() + self.probe_interval
        if not self.down:
            self.down = True
            self.outages += 1
            _log.warning(
                "redis state backend unreachable (%s); %s until it answers again",
                type(exc).__name__,
                "serving rate limits, breakers and leases from local memory"
                if self.on_unavailable == "fail_open"
                else "failing calls that need shared state",
            )

    async def _unavailable(
        self,
        operation: str,
        local: Callable[[StateBackend], Awaitable[R]],
        cause: BaseException | None,
    ) -> R:
        self.fallback_calls += 1
        if self.on_unavailable == "fail_closed":
            raise ServiceUnavailable(
                f"the shared state store (Redis) is unreachable, so {operation} cannot run; "
                "calls fail until it answers again (state backend policy: fail_closed)",
                hint="check that Redis is running and reachable, or set "
                "on_unavailable='fail_open' to fall back to per-process state",
            ) from cause
        if self.on_fallback is not None:
            try:
                self.on_fallback(operation)
            except Exception:  # a metrics hook must never break the call
                _log.exception("state fallback hook failed")
        return await local(self.fallback)

    def _key(self, family: str, key: str) -> str:
        return f"{self.prefix}{family}:{key}"

    def _config_args(self, config: BreakerConfig) -> tuple[str, ...]:
        found = self._configs.get(config)
        if found is None:
            ttl = max(
                self._breaker_ttl,
                2 * (config.window + config.reset_timeout + config.probe_lease),
            )
            found = (
                config.mode,
                str(config.failure_threshold),
                _num(config.failure_ratio),
                str(config.minimum_calls),
                _num(config.window),
                _num(config.reset_timeout),
                str(config.half_open_max_calls),
                _num(config.slow_call_ratio),
                _num(config.probe_lease),
                _num(ttl),
                self._forced_ttl,
            )
            if len(self._configs) < 1024:
                self._configs[config] = found
        return found

    def _rate_args(self, rate: float, burst: float, cost: float) -> bytes:
        found = self._rates.get((rate, burst, cost))
        if found is None:
            found = b"".join(map(bulk, (_num(rate), _num(burst), _num(cost))))
            if len(self._rates) >= _CACHE_LIMIT:
                self._rates.clear()
            self._rates[(rate, burst, cost)] = found
        return found

    def _bucket(self, key: str) -> bytes:
        found = bulk(self._key("rl", key))
        if len(self._buckets) >= _CACHE_LIMIT:
            self._buckets.clear()
        self._buckets[key] = found
        return found

    async def ping(self) -> bool:
        """Whether Redis answers now (for health checks; never raises)."""
        try:
            return bool(await self._client().redis.ping())
        except (RedisError, OSError):
            return False

    async def aclose(self) -> None:
        """Close this event loop's connections (and an injected client's)."""
        if self._fixed is not None:
            await self._fixed.redis.aclose()
            return
        found = self._clients.pop(asyncio.get_running_loop(), None)
        if found is not None:
            await found.redis.aclose()

    # --- rate limiting (GCRA) ----------------------------------------------------------------

    async def rate_acquire(
        self, key: str, *, rate: float, burst: float, cost: float, max_wait: float, now: float
    ) -> RateDecision:
        # The hot path of every distributed decision: the command is assembled from cached,
        # pre-encoded segments and no closure is built unless Redis fails.
        if self.down and self._timer.monotonic() < self._retry_at:
            return await self._unavailable(
                "rate_acquire", _local_rate(key, rate, burst, cost, max_wait, now), None
            )
        command = (
            self._rate_head,
            self._buckets.get(key) or self._bucket(key),
            _SERVER_CLOCK if self.clock == "server" else bulk(self._now(now)),
            self._rates.get((rate, burst, cost)) or self._rate_args(rate, burst, cost),
            _NO_BOUND if max_wait == math.inf else bulk(_num(max_wait)),
            self._grace_arg,
        )
        try:
            reply = await self._client().evalsha(self._rate_script, command)
        except (RedisError, OSError) as exc:
            return await self._failed(
                "rate_acquire", exc, _local_rate(key, rate, burst, cost, max_wait, now)
            )
        if self.down:
            self._came_back()
        return parse_decision(reply)

    async def rate_acquire_many(
        self, requests: Sequence[RateRequest], *, max_wait: float, now: float
    ) -> RateDecision:
        merged: dict[str, tuple[float, float, float]] = {}
        for r in requests:
            prior = merged.get(r.key)
            merged[r.key] = (r.rate, r.burst, r.cost + (prior[2] if prior else 0.0))
        args = [self._now(now), _num(max_wait), self._grace]
        for rate, burst, cost in merged.values():
            args += (_num(rate), _num(burst), _num(cost))
        return await self._run(
            "rate_acquire_many",
            [self._key("rl", k) for k in merged],
            args,
            lambda b: b.rate_acquire_many(requests, max_wait=max_wait, now=now),
            parse_decision,
        )

    async def rate_block(self, key: str, *, seconds: float, now: float) -> None:
        await self._run(
            "rate_block",
            (self._key("rl", key),),
            (self._now(now), _num(seconds), self._grace),
            lambda b: b.rate_block(key, seconds=seconds, now=now),
            parse_none,
        )

    async def rate_remaining(self, key: str, *, rate: float, burst: float, now: float) -> float:
        return await self._run(
            "rate_remaining",
            (self._key("rl", key),),
            (self._now(now), _num(rate), _num(burst)),
            lambda b: b.rate_remaining(key, rate=rate, burst=burst, now=now),
            parse_float,
        )

    # --- circuit breaker ---------------------------------------------------------------------

    async def breaker_acquire(
        self, key: str, *, config: BreakerConfig, now: float
    ) -> BreakerPermit:
        return await self._run(
            "breaker_acquire",
            (self._key("cb", key),),
            (self._now(now), *self._config_args(config)),
            lambda b: b.breaker_acquire(key, config=config, now=now),
            parse_permit,
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
        return await self._run(
            "breaker_record",
            (self._key("cb", key),),
            (
                self._now(now),
                *self._config_args(config),
                str(permit.generation),
                "1" if permit.is_probe else "0",
                outcome.value,
                "1" if slow else "0",
            ),
            lambda b: b.breaker_record(
                key, config=config, permit=permit, outcome=outcome, slow=slow, now=now
            ),
            parse_transition,
        )

    async def breaker_snapshot(
        self, key: str, *, config: BreakerConfig, now: float
    ) -> BreakerSnapshot:
        shift = self._shifts_time()

        def parse(reply: object) -> BreakerSnapshot:
            assert isinstance(reply, list)
            script_now = float(text(reply[8]))

            def at(value: bytes | None) -> float | None:
                if value is None:
                    return None
                t = float(text(value))
                return now + (t - script_now) if shift else t

            return BreakerSnapshot(
                state=BreakerState(text(reply[0])),
                calls=int(reply[1]),
                failures=int(reply[2]),
                slow_calls=int(reply[3]),
                consecutive_failures=int(reply[4]),
                opened_at=at(reply[5]),
                next_probe_at=at(reply[6]),
                half_open_in_flight=int(reply[7]),
            )

        return await self._run(
            "breaker_snapshot",
            (self._key("cb", key),),
            (self._now(now), *self._config_args(config)),
            lambda b: b.breaker_snapshot(key, config=config, now=now),
            parse,
        )

    async def breaker_reset(self, key: str, *, now: float) -> BreakerTransition | None:
        return await self._run(
            "breaker_reset",
            (self._key("cb", key),),
            (self._now(now), *self._config_args(BreakerConfig())),
            lambda b: b.breaker_reset(key, now=now),
            parse_transition,
        )

    async def breaker_force_open(self, key: str, *, now: float) -> BreakerTransition | None:
        return await self._run(
            "breaker_force_open",
            (self._key("cb", key),),
            (self._now(now), *self._config_args(BreakerConfig())),
            lambda b: b.breaker_force_open(key, now=now),
            parse_transition,
        )

    # --- leases ------------------------------------------------------------------------------

    async def lock_acquire(self, key: str, *, owner: str, ttl: float, now: float) -> int | None:
        return await self._run(
            "lock_acquire",
            (self._key("lk", key),),
            (self._now(now), owner, _num(ttl), self._keep),
            lambda b: b.lock_acquire(key, owner=owner, ttl=ttl, now=now),
            parse_optional_int,
        )

    async def lock_release(self, key: str, *, owner: str, now: float | None = None) -> bool:
        return await self._run(
            "lock_release",
            (self._key("lk", key),),
            ("none" if now is None else self._now(now), owner),
            lambda b: b.lock_release(key, owner=owner, now=now),
            parse_bool,
        )

    async def lock_extend(self, key: str, *, owner: str, ttl: float, now: float) -> bool:
        return await self._run(
            "lock_extend",
            (self._key("lk", key),),
            (self._now(now), owner, _num(ttl), self._keep),
            lambda b: b.lock_extend(key, owner=owner, ttl=ttl, now=now),
            parse_bool,
        )

    # --- seen ids and counters ---------------------------------------------------------------

    async def seen_add(self, key: str, *, ttl: float, now: float) -> bool:
        return await self._run(
            "seen_add",
            (self._key("seen", key),),
            (self._now(now), _num(ttl), self._grace),
            lambda b: b.seen_add(key, ttl=ttl, now=now),
            parse_bool,
        )

    async def incr(self, key: str, amount: int = 1, *, ttl: float, now: float) -> int:
        return await self._run(
            "incr",
            (self._key("ctr", key),),
            (self._now(now), str(int(amount)), _num(ttl), self._grace),
            lambda b: b.incr(key, amount, ttl=ttl, now=now),
            parse_int,
        )

    async def counter_get(self, key: str, *, now: float) -> int:
        return await self._run(
            "counter_get",
            (self._key("ctr", key),),
            (self._now(now),),
            lambda b: b.counter_get(key, now=now),
            parse_int,
        )

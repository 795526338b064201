"""The Redis state backend against a real redis-server: clock sources, key layout and TTLs,
outages (fail-open / fail-closed, recovery), and several OS processes sharing one Redis.

The semantics shared with the in-memory backend are proved in ``test_backend_contract.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import multiprocessing
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Lock, Thread
from typing import TypeVar

import pytest
import redis.asyncio as aioredis

from connectors.clock import FakeClock, SystemClock
from connectors.errors import ServiceUnavailable
from connectors.resilience.keys import RATE_LIMIT, state_key
from connectors.state import (
    BreakerConfig,
    BreakerOutcome,
    BreakerState,
    RateDecision,
    RateRequest,
    StateBackend,
)
from connectors.state.redis import RedisStateBackend
from tests.servers.redis import RedisServer, free_port, redis_server

__all__ = ["redis_server"]

pytestmark = pytest.mark.server

T = TypeVar("T")


def run(coro_fn: Callable[[], object]) -> object:
    return asyncio.run(coro_fn())  # type: ignore[arg-type]


def _prefix() -> str:
    return f"t-{uuid.uuid4().hex[:10]}:"


# --- construction ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one"),
        ({"url": "redis://x", "clock": "ntp"}, "clock"),
        ({"url": "redis://x", "on_unavailable": "ignore"}, "on_unavailable"),
        ({"url": "redis://x", "prefix": "{app}:"}, "braces"),
    ],
)
def test_bad_configuration_is_refused_with_what_to_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        RedisStateBackend(**kwargs)


def test_repr_never_shows_the_password():
    backend = RedisStateBackend("redis://:hunter2-secret@127.0.0.1:6390/0")
    assert "hunter2" not in repr(backend)
    assert "127.0.0.1:6390" in repr(backend)


def test_backend_satisfies_the_protocol():
    assert isinstance(RedisStateBackend("redis://127.0.0.1:1/0"), StateBackend)


# --- the server clock ----------------------------------------------------------------------------


def test_server_clock_paces_by_redis_time_whatever_now_the_callers_pass(redis_server):
    async def main() -> list[float]:
        backend = RedisStateBackend(redis_server.url, prefix=_prefix())
        try:
            waits = []
            for fake_now in (0.0, 1e9, -5.0):  # ignored: Redis TIME decides
                d = await backend.rate_acquire(
                    "k", rate=10, burst=1, cost=1, max_wait=60, now=fake_now
                )
                waits.append(d.wait)
            return waits
        finally:
            await backend.aclose()

    waits = run(main)
    assert waits[0] == 0.0
    assert waits[1] == pytest.approx(0.1, abs=0.05)
    assert waits[2] == pytest.approx(0.2, abs=0.05)


def test_server_clock_snapshot_times_are_on_the_callers_scale(redis_server):
    async def main() -> tuple[float | None, float | None, float | None]:
        backend = RedisStateBackend(redis_server.url, prefix=_prefix())
        config = BreakerConfig(failure_threshold=1, reset_timeout=30)
        try:
            permit = await backend.breaker_acquire("b", config=config, now=500.0)
            await backend.breaker_record(
                "b",
                config=config,
                permit=permit,
                outcome=BreakerOutcome.FAILURE,
                slow=False,
                now=500.0,
            )
            rejected = await backend.breaker_acquire("b", config=config, now=500.0)
            snap = await backend.breaker_snapshot("b", config=config, now=500.0)
            return snap.opened_at, snap.next_probe_at, rejected.retry_after
        finally:
            await backend.aclose()

    opened_at, next_probe_at, retry_after = run(main)
    assert opened_at == pytest.approx(500.0, abs=1.0)
    assert next_probe_at == pytest.approx(530.0, abs=1.0)
    assert retry_after == pytest.approx(30.0, abs=1.0)


def test_client_time_source_replaces_the_callers_now(redis_server):
    wall = [1_000.0]

    async def main() -> tuple[float, float, float | None]:
        backend = RedisStateBackend(
            redis_server.url, prefix=_prefix(), clock="client", client_time=lambda: wall[0]
        )
        try:
            await backend.rate_acquire("k", rate=1, burst=1, cost=1, max_wait=60, now=7.0)
            first = await backend.rate_acquire("k", rate=1, burst=1, cost=1, max_wait=60, now=7.0)
            wall[0] += 5
            second = await backend.rate_acquire("k", rate=1, burst=1, cost=1, max_wait=60, now=7.0)
            await backend.breaker_force_open("b", now=3.0)
            snap = await backend.breaker_snapshot("b", config=BreakerConfig(), now=3.0)
            return first.wait, second.wait, snap.opened_at
        finally:
            await backend.aclose()

    assert run(main) == (1.0, 0.0, 3.0)


# --- key layout, TTLs, scripts -------------------------------------------------------------------


def test_keys_carry_the_prefix_and_the_tenant_hash_tag_and_all_expire(redis_server):
    prefix = _prefix()
    key = state_key("acme", RATE_LIMIT, "salesforce", "default")

    async def main() -> dict[str, int]:
        backend = RedisStateBackend(redis_server.url, prefix=prefix)
        client = aioredis.Redis.from_url(redis_server.url)
        try:
            await backend.rate_acquire(key, rate=5, burst=2, cost=1, max_wait=1, now=0)
            await backend.rate_acquire_many(
                [RateRequest(key, 5, 2), RateRequest(key + "-2", 1, 1)], max_wait=9, now=0
            )
            await backend.rate_block(key + "-3", seconds=3, now=0)
            config = BreakerConfig(failure_threshold=1)
            permit = await backend.breaker_acquire("{acme}:cb:x:y", config=config, now=0)
            await backend.breaker_record(
                "{acme}:cb:x:y",
                config=config,
                permit=permit,
                outcome=BreakerOutcome.FAILURE,
                slow=False,
                now=0,
            )
            await backend.breaker_force_open("{acme}:cb:x:z", now=0)
            await backend.lock_acquire("lease", owner="me", ttl=5, now=0)
            await backend.seen_add("{acme}:hook:evt-1", ttl=60, now=0)
            await backend.incr("{acme}:health:calls", 3, ttl=60, now=0)
            keys = [k.decode() async for k in client.scan_iter(match=f"{prefix}*")]
            return {k: await client.pttl(k) for k in keys}
        finally:
            await client.aclose()
            await backend.aclose()

    ttls = run(main)
    assert set(ttls) == {
        f"{prefix}rl:{key}",
        f"{prefix}rl:{key}-2",
        f"{prefix}rl:{key}-3",
        f"{prefix}cb:{{acme}}:cb:x:y",
        f"{prefix}cb:{{acme}}:cb:x:z",
        f"{prefix}lk:lease",
        f"{prefix}seen:{{acme}}:hook:evt-1",
        f"{prefix}ctr:{{acme}}:health:calls",
    }
    assert all(ttl > 0 for ttl in ttls.values()), ttls  # -1 would mean "never expires"
    assert ttls[f"{prefix}cb:{{acme}}:cb:x:z"] > ttls[f"{prefix}cb:{{acme}}:cb:x:y"]  # forced


def test_a_client_that_decodes_responses_gets_the_same_decisions(redis_server):
    async def main() -> list[RateDecision]:
        client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
        backend = RedisStateBackend(client=client, prefix=_prefix(), clock="client")
        try:
            return [
                await backend.rate_acquire("k", rate=2, burst=1, cost=1, max_wait=1, now=0)
                for _ in range(3)
            ]
        finally:
            await backend.aclose()

    assert run(main) == [
        RateDecision(admitted=True, wait=0.0),
        RateDecision(admitted=True, wait=0.5),
        RateDecision(admitted=True, wait=1.0),
    ]


def test_one_backend_serves_several_event_loops(redis_server):
    backend = RedisStateBackend(redis_server.url, prefix=_prefix(), clock="client")

    async def once(now: float) -> int:
        try:
            return await backend.incr("c", ttl=60, now=now)
        finally:
            await backend.aclose()

    assert asyncio.run(once(0)) == 1
    assert asyncio.run(once(1)) == 2


def test_half_open_admits_exactly_n_probes_among_100_callers_on_4_connections_pools(
    redis_server,
):
    prefix = _prefix()
    config = BreakerConfig(failure_threshold=1, reset_timeout=10, half_open_max_calls=2)

    async def main() -> list[bool]:
        backends = [
            RedisStateBackend(redis_server.url, prefix=prefix, clock="client") for _ in range(4)
        ]
        try:
            permit = await backends[0].breaker_acquire("b", config=config, now=0.0)
            await backends[0].breaker_record(
                "b",
                config=config,
                permit=permit,
                outcome=BreakerOutcome.FAILURE,
                slow=False,
                now=0.0,
            )
            permits = await asyncio.gather(
                *(backends[i % 4].breaker_acquire("b", config=config, now=20.0) for i in range(100))
            )
            return [p.allowed for p in permits]
        finally:
            for b in backends:
                await b.aclose()

    assert sum(run(main)) == 2


# --- outages -------------------------------------------------------------------------------------


def test_fail_open_serves_from_local_memory_counts_and_warns_once(caplog):
    fallbacks: list[str] = []
    timer = FakeClock()
    backend = RedisStateBackend(
        f"redis://127.0.0.1:{free_port()}/0",
        prefix=_prefix(),
        on_fallback=fallbacks.append,
        probe_interval=5,
        timer=timer,
        socket_timeout=0.5,
    )

    async def main() -> list[object]:
        try:
            return [
                await backend.rate_acquire("k", rate=1, burst=1, cost=1, max_wait=9, now=0),
                await backend.rate_acquire("k", rate=1, burst=1, cost=1, max_wait=9, now=0),
                await backend.lock_acquire("l", owner="a", ttl=5, now=0),
                await backend.lock_acquire("l", owner="b", ttl=5, now=0),
            ]
        finally:
            await backend.aclose()

    with caplog.at_level(logging.WARNING, logger="connectors.state.redis"):
        first, second, lease, other = run(main)
    assert (first.wait, second.wait) == (0.0, 1.0)  # local state still limits
    assert lease is not None
    assert other is None
    assert fallbacks == ["rate_acquire", "rate_acquire", "lock_acquire", "lock_acquire"]
    assert backend.down
    assert backend.outages == 1
    warnings = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(warnings) == 1


def test_a_failing_fallback_hook_never_breaks_the_call():
    def hook(operation: str) -> None:
        raise RuntimeError("metrics are down")

    backend = RedisStateBackend(
        f"redis://127.0.0.1:{free_port()}/0", on_fallback=hook, socket_timeout=0.5
    )

    async def main() -> bool:
        try:
            return await backend.seen_add("e", ttl=5, now=0)
        finally:
            await backend.aclose()

    assert run(main) is True


def test_an_exhausted_connection_pool_is_service_unavailable_not_an_outage(redis_server):
    def one_connection() -> aioredis.Redis:
        pool = aioredis.ConnectionPool.from_url(redis_server.url, max_connections=1)
        return aioredis.Redis.from_pool(pool)

    backend = RedisStateBackend(client_factory=one_connection, prefix=_prefix())

    async def main() -> list[object]:
        try:
            return await asyncio.gather(
                *(backend.incr("c", ttl=5, now=0) for _ in range(20)), return_exceptions=True
            )
        finally:
            await backend.aclose()

    results = run(main)
    assert any(isinstance(r, ServiceUnavailable) for r in results)
    assert not backend.down
    assert backend.fallback_calls == 0


def test_fail_closed_raises_service_unavailable_with_a_clear_message():
    backend = RedisStateBackend(
        f"redis://127.0.0.1:{free_port()}/0", on_unavailable="fail_closed", socket_timeout=0.5
    )

    async def main() -> None:
        try:
            await backend.breaker_acquire("b", config=BreakerConfig(), now=0)
        finally:
            await backend.aclose()

    with pytest.raises(ServiceUnavailable, match="Redis\\) is unreachable") as info:
        run(main)
    assert info.value.retryable
    assert "fail_open" in (info.value.hint or "")


def test_outage_probes_redis_at_most_every_probe_interval_then_recovers():
    port = free_port()
    timer = FakeClock()
    backend = RedisStateBackend(
        f"redis://127.0.0.1:{port}/0",
        probe_interval=5,
        timer=timer,
        socket_timeout=0.5,
        clock="client",
    )
    attempts = [0]
    real = backend._client

    def counting():  # count how often Redis is actually tried
        attempts[0] += 1
        return real()

    backend._client = counting  # type: ignore[method-assign]

    async def main(server: list[RedisServer]) -> list[object]:
        try:
            out: list[object] = [await backend.incr("c", ttl=60, now=0) for _ in range(3)]
            out.append(attempts[0])
            server.append(RedisServer.start(port))
            out.append(await backend.incr("c", ttl=60, now=0))  # still within the interval
            timer.advance(5)
            out.append(await backend.incr("c", ttl=60, now=0))  # probes, finds Redis
            out.append(await backend.incr("c", ttl=60, now=0))
            out.append(backend.down)
            return out
        finally:
            await backend.aclose()

    started: list[RedisServer] = []
    try:
        out = run(lambda: main(started))
    finally:
        for s in started:
            s.close()
    assert out == [1, 2, 3, 1, 4, 1, 2, False]


# --- several processes against one Redis ----------------------------------------------------------
# (One rate limit shared by four processes is proven at a rate-enforcing provider in
# test_distributed_rate.py.)


def _context() -> multiprocessing.context.BaseContext:
    """Worker processes forked from a server that imported the framework once.

    Importing ``connectors`` takes seconds on a loaded machine; a fork server pays it once per
    session, so each test's four workers start in milliseconds, from a clean single-threaded
    parent (unlike a plain fork of the pytest process).
    """
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    return ctx


def _start(target: Callable[..., None], args_of: Callable[[int], tuple[object, ...]], n: int = 4):
    ctx = _context()
    procs = [ctx.Process(target=target, args=args_of(i)) for i in range(n)]
    for p in procs:
        p.start()
    return procs


def _join(procs) -> None:
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0] * len(procs)


def _breaker_worker(url: str, prefix: str, index: int, barrier, out) -> None:
    from connectors.resilience.breaker import CircuitBreaker
    from connectors.resilience.policies import BreakerPolicy

    async def main() -> tuple[bool, bool, str]:
        backend = RedisStateBackend(url, prefix=prefix)
        breaker = CircuitBreaker(
            BreakerPolicy(failure_threshold=3, reset_timeout=60), backend, SystemClock()
        )
        key = "{acme}:cb:crm:default"
        before = await breaker.acquire(key)
        await breaker.record(key, before, BreakerOutcome.SUCCESS)
        await asyncio.to_thread(barrier.wait, 120)
        if index == 0:
            for _ in range(3):
                permit = await breaker.acquire(key)
                await breaker.record(key, permit, BreakerOutcome.FAILURE)
        await asyncio.to_thread(barrier.wait, 120)
        after = await breaker.acquire(key)
        await backend.aclose()
        return before.allowed, after.allowed, after.state.value

    out.put((index, asyncio.run(main())))


def test_a_circuit_opened_in_one_process_rejects_in_every_process(redis_server):
    ctx = _context()
    queue, barrier = ctx.Queue(), ctx.Barrier(4)
    prefix = _prefix()
    procs = _start(_breaker_worker, lambda i: (redis_server.url, prefix, i, barrier, queue))
    results = dict(queue.get(timeout=120) for _ in procs)
    _join(procs)
    assert results == {i: (True, False, BreakerState.OPEN.value) for i in range(4)}


class _TokenEndpoint:
    """A loopback OAuth token endpoint that counts its calls (each takes 200 ms)."""

    def __init__(self) -> None:
        self.calls = 0
        lock = Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with lock:
                    outer.calls += 1
                    n = outer.calls
                time.sleep(0.2)
                body = json.dumps(
                    {"access_token": f"fresh-{n}", "token_type": "Bearer", "expires_in": 3600}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/token"
        self.thread = Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _token_worker(
    redis_url: str, db_url: str, keys: str, endpoint: str, prefix: str, barrier, out
) -> None:
    import httpx2

    from connectors.auth.manager import TokenManager
    from connectors.auth.stores import CredentialTokenStore, StateLockProvider
    from connectors.auth.tokens import TokenSet
    from connectors.secrets.crypto import MasterKeyring
    from connectors.secrets.store import CredentialStore
    from connectors.storage.db import Database

    class Grant:
        async def obtain(self, current: TokenSet | None) -> TokenSet:
            async with httpx2.AsyncClient() as client:
                response = await client.post(endpoint, data={"grant_type": "refresh_token"})
            return TokenSet.from_response(response.json(), time.time(), previous=current)

    async def main() -> str:
        db = Database(db_url)
        backend = RedisStateBackend(redis_url, prefix=prefix)
        manager = TokenManager(
            CredentialTokenStore(CredentialStore(db, MasterKeyring.parse(keys))),
            StateLockProvider(backend),
            poll_interval=0.02,
        )
        manager.register("acme", "crm", Grant())
        await asyncio.to_thread(barrier.wait, 120)
        token = await manager.get_token("acme", "crm")
        await backend.aclose()
        await db.dispose()
        return token.access_token.reveal()

    out.put(asyncio.run(main()))


def test_an_expired_token_across_four_processes_causes_exactly_one_token_request(
    redis_server, tmp_path: Path
):
    from connectors.auth.stores import CredentialTokenStore
    from connectors.auth.tokens import TokenSet
    from connectors.secrets import Secret
    from connectors.secrets.crypto import MasterKeyring, generate_master_key_entry
    from connectors.secrets.store import CredentialStore
    from connectors.storage.db import Database
    from connectors.storage.migrate import migrate

    keys = generate_master_key_entry("k1")
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'shared.db'}"

    async def setup() -> None:
        db = Database(db_url)
        await migrate(db)
        store = CredentialTokenStore(CredentialStore(db, MasterKeyring.parse(keys)))
        expired = TokenSet(
            access_token=Secret("old", name="access_token"),
            refresh_token=Secret("refresh", name="refresh_token"),
            expires_at=time.time() - 60,
        )
        await store.save("acme", "crm", expired, expected_version=None)
        await db.dispose()

    asyncio.run(setup())
    endpoint = _TokenEndpoint()
    ctx = _context()
    queue, barrier = ctx.Queue(), ctx.Barrier(4)
    prefix = _prefix()
    try:
        procs = _start(
            _token_worker,
            lambda i: (redis_server.url, db_url, keys, endpoint.url, prefix, barrier, queue),
        )
        tokens = [queue.get(timeout=120) for _ in procs]
        _join(procs)
    finally:
        endpoint.close()
    assert endpoint.calls == 1
    assert tokens == ["fresh-1"] * 4


def test_redis_stopped_mid_run_degrades_as_configured_and_recovers():
    server = RedisServer.start()
    fallbacks: list[str] = []
    opened = RedisStateBackend(
        server.url,
        prefix="open:",
        on_fallback=fallbacks.append,
        probe_interval=0.2,
        socket_timeout=0.5,
    )
    closed = RedisStateBackend(
        server.url,
        prefix="closed:",
        on_unavailable="fail_closed",
        probe_interval=0.2,
        socket_timeout=0.5,
    )
    key = "{acme}:rl:crm:default"

    async def acquire(backend: RedisStateBackend) -> float:
        d = await backend.rate_acquire(key, rate=1000, burst=10, cost=1, max_wait=1, now=0)
        return d.wait

    async def main() -> dict[str, object]:
        out: dict[str, object] = {}
        try:
            out["before"] = (await acquire(opened), await acquire(closed))
            server.stop()
            out["open_during"] = [await acquire(opened) for _ in range(5)]
            try:
                await acquire(closed)
            except ServiceUnavailable:
                out["closed_during"] = "ServiceUnavailable"
            out["fallbacks_during"] = len(fallbacks)
            server.restart()
            await asyncio.sleep(0.25)  # past the probe interval
            out["after"] = (await acquire(opened), await acquire(closed))
            out["down_after"] = (opened.down, closed.down)
            client = aioredis.Redis.from_url(server.url)
            out["in_redis"] = sorted([k.decode() async for k in client.scan_iter(match="*")])
            await client.aclose()
        finally:
            await opened.aclose()
            await closed.aclose()
        return out

    try:
        out = asyncio.run(main())
    finally:
        server.close()
    assert out["before"] == (0.0, 0.0)
    assert out["open_during"] == [0.0] * 5
    assert out["closed_during"] == "ServiceUnavailable"
    assert out["fallbacks_during"] == 5
    assert out["after"] == (0.0, 0.0)
    assert out["down_after"] == (False, False)
    assert out["in_redis"] == [f"closed:rl:{key}", f"open:rl:{key}"]
    assert math.isfinite(len(fallbacks))

"""The wire path of the Redis state backend (:mod:`connectors.state.redis_wire`): scripts are
packaged with their helpers, an ``EVALSHA`` reloads its script after ``NOSCRIPT``, and a broken
pooled connection is reopened by the connection's retry policy -- proved through the backend's
operations against a real redis-server (the generic ``run`` path and ``rate_acquire``'s
pre-encoded command alike).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

from connectors.state.redis import RedisStateBackend
from connectors.state.redis_wire import script_source
from tests.servers.redis import redis_server

__all__ = ["redis_server"]

pytestmark = pytest.mark.server


def run(coro_fn: Callable[[], object]) -> object:
    return asyncio.run(coro_fn())  # type: ignore[arg-type]


def _prefix() -> str:
    return f"t-{uuid.uuid4().hex[:10]}:"


# --- script text ---------------------------------------------------------------------------------


def test_every_script_is_packaged_with_its_prelude_except_the_standalone_hot_path():
    for name in ("rate_acquire_many", "breaker_record", "lock_acquire", "seen_add", "counter_get"):
        source = script_source(name)
        assert "local function clock" in source
        assert ("local function move" in source) == name.startswith("breaker_")
    # rate_acquire inlines its helpers (defining the prelude's costs on every call).
    assert "local function" not in script_source("rate_acquire")


# --- sending -------------------------------------------------------------------------------------


def test_scripts_reload_after_script_flush(redis_server):
    async def main() -> tuple[bool, bool, bool, bool]:
        backend = RedisStateBackend(redis_server.url, prefix=_prefix(), clock="client")
        client = aioredis.Redis.from_url(redis_server.url)
        try:
            first = await backend.seen_add("e", ttl=10, now=0)
            await client.script_flush()
            second = await backend.seen_add("e", ttl=10, now=1)
            # rate_acquire assembles its command from pre-encoded parts: it reloads too.
            a = await backend.rate_acquire("k", rate=1, burst=1, cost=1, max_wait=0, now=0)
            await client.script_flush()
            b = await backend.rate_acquire("k", rate=1, burst=1, cost=1, max_wait=0, now=0)
            return first, second, a.admitted, b.admitted
        finally:
            await client.aclose()
            await backend.aclose()

    assert run(main) == (True, False, True, False)


def test_a_broken_pooled_connection_is_reopened_without_falling_back(redis_server):
    async def main() -> tuple[list[bool], int]:
        backend = RedisStateBackend(redis_server.url, prefix=_prefix())
        admin = aioredis.Redis.from_url(redis_server.url)
        try:
            got = [
                (
                    await backend.rate_acquire("k", rate=1e6, burst=9, cost=1, max_wait=0, now=0)
                ).admitted
            ]
            # Redis closes every other client connection (as after an idle timeout).
            await admin.execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
            for _ in range(3):
                decision = await backend.rate_acquire(
                    "k", rate=1e6, burst=9, cost=1, max_wait=0, now=0
                )
                got.append(decision.admitted)
            return got, backend.fallback_calls
        finally:
            await admin.aclose()
            await backend.aclose()

    assert run(main) == ([True] * 4, 0)

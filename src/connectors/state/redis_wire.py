"""How the Redis state backend's Lua scripts reach Redis: script text, ``EVALSHA`` on the wire.

:mod:`connectors.state.redis` decides *what* to run (which script, with which keys and
arguments, and what to do when Redis is down); this module is *how* it is sent, kept apart
because it works below redis-py's public API:

* :func:`script_source` assembles a script's text from ``connectors/state/lua/`` and
  :class:`Script` holds it with its SHA1 and the RESP heads of its ``EVALSHA`` commands, so a
  command is a tuple of pre-encoded segments (:func:`bulk` encodes one argument);
* :class:`ScriptClient` writes such a command on a connection borrowed from a redis-py client's
  pool, under the connection's own retry policy, and loads the script on ``NOSCRIPT``;
* :func:`connect` builds the client the backend uses for a URL (fail fast, queue when busy).

Why by hand: redis-py's per-command dispatch (argument encoding, command-name parsing, response
callbacks, metrics hooks) costs more than the script itself, and this path is the floor of every
distributed rate-limit decision (``benchmarks/distributed.py``). Errors still surface as
redis-py's exceptions (``NoScriptError``, ``ResponseError``, ``ConnectionError``...), which the
backend classifies.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from functools import cache, partial
from importlib import resources
from typing import Final

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import NoScriptError

__all__ = ["Script", "ScriptClient", "bulk", "connect", "script_named", "script_source"]

#: Scripts that carry their own helpers (hot paths: the prelude's definitions cost per call).
_STANDALONE: Final = frozenset({"rate_acquire"})


@cache
def script_source(name: str) -> str:
    """The full text of script ``name``: the prelude (unless the script is standalone), the
    breaker library if needed, the body."""
    folder = resources.files("connectors.state") / "lua"
    parts = [] if name in _STANDALONE else [(folder / "_prelude.lua").read_text(encoding="utf-8")]
    if name.startswith("breaker_"):
        parts.append((folder / "_breaker.lua").read_text(encoding="utf-8"))
    parts.append((folder / f"{name}.lua").read_text(encoding="utf-8"))
    return "\n".join(parts)


def bulk(value: str | bytes) -> bytes:
    """One RESP bulk string (what redis-py would encode for a ``str`` argument)."""
    data = value.encode() if isinstance(value, str) else value
    return b"$%d\r\n%s\r\n" % (len(data), data)


def connect(url: str, timeout: float, max_connections: int) -> aioredis.Redis:
    """A client for ``url`` that fails fast when Redis is down (the outage policy takes over)
    and queues, rather than fails, when all ``max_connections`` are busy."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        # One immediate retry reconnects a pooled connection that a restart broke; longer
        # outages are handled by the backend, never by sleeping inside redis-py.
        retry=Retry(NoBackoff(), 1),
    )
    return aioredis.Redis.from_pool(pool)


class Script:
    """One script: its text, its SHA1 and the RESP heads of its ``EVALSHA`` commands."""

    __slots__ = ("_heads", "sha", "source")

    def __init__(self, name: str) -> None:
        self.source = script_source(name).encode()
        self.sha = hashlib.sha1(self.source, usedforsecurity=False).hexdigest().encode()
        self._heads: dict[tuple[int, int], bytes] = {}

    def head(self, keys: int, args: int) -> bytes:
        """``*<n> EVALSHA <sha> <numkeys>`` in RESP, for ``keys`` keys and ``args`` arguments."""
        found = self._heads.get((keys, args))
        if found is None:
            found = b"*%d\r\n$7\r\nEVALSHA\r\n$40\r\n%s\r\n%s" % (
                3 + keys + args,
                self.sha,
                bulk(str(keys)),
            )
            self._heads[(keys, args)] = found
        return found


@cache
def script_named(name: str) -> Script:
    """The script ``name`` (its SHA depends only on its text: one per process)."""
    return Script(name)


class ScriptClient:
    """Runs scripts on one redis-py client (redis.asyncio clients belong to one event loop).

    Commands go out pre-encoded: each is a tuple of RESP segments, written to a connection
    borrowed from the client's pool (as redis-py's pipelines do, so a single-connection client
    lends its pool's connections too), and the reply is read back under the connection's own
    retry policy (disconnect and retry on a broken connection, like ``execute_command``). This
    skips redis-py's per-command dispatch -- argument encoding, command-name parsing, response
    callbacks, its metrics hooks -- which costs more than the script itself: this path is the
    floor of every distributed rate-limit decision. Error replies are still raised as
    redis-py's exceptions (``NoScriptError``, ``ResponseError``...).
    """

    __slots__ = ("pool", "redis")

    def __init__(self, client: aioredis.Redis) -> None:
        self.redis = client
        self.pool = client.connection_pool

    async def run(self, name: str, keys: Sequence[str], args: Sequence[str]) -> object:
        """``EVALSHA`` script ``name`` with ``keys`` and ``args``; return the raw reply."""
        script = script_named(name)
        command = (script.head(len(keys), len(args)), *map(bulk, keys), *map(bulk, args))
        return await self.evalsha(script, command)

    async def evalsha(self, script: Script, command: Sequence[bytes]) -> object:
        """Send an ``EVALSHA`` of ``script``; on ``NOSCRIPT`` (a restart, ``SCRIPT FLUSH``)
        load the script and send it once more."""
        try:
            return await self.send(command)
        except NoScriptError:
            await self.redis.script_load(script.source)
            return await self.send(command)

    async def send(self, command: Sequence[bytes]) -> object:
        """Write one pre-encoded command on a pooled connection; return its reply (an error
        reply is raised as redis-py's exception for it)."""
        pool = self.pool
        conn: AbstractConnection = await pool.get_connection()  # type: ignore[no-untyped-call]
        try:
            return await conn.retry.call_with_retry(
                partial(_exchange, conn, command), partial(_drop, conn)
            )
        finally:
            await pool.release(conn)


async def _exchange(conn: AbstractConnection, command: Sequence[bytes]) -> object:
    await conn.send_packed_command(command)
    return await conn.read_response()


async def _drop(conn: AbstractConnection, error: BaseException) -> None:
    """Between retries: close the broken connection (the next send reconnects)."""
    await conn.disconnect()

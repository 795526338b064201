"""One rate limit shared by several OS processes, proven at a provider that enforces it.

Issue 11: four processes × 50 concurrent callers send through the real connector stack
(``ConnectorHttpClient`` › ``Pipeline`` › ``RateLimiter`` on one shared key in the real
``RedisStateBackend``, on the suite's ``redis-server``) to :class:`RateLimitedAPI`, served by
uvicorn on loopback, which enforces R requests per second and answers 429 above it. What the
server saw is the proof: no 429, and the aggregate rate over the steady part within R ± 3%.

The emulator's own tests are in ``tests/testing/test_ratelimited.py``.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import queue
import time
import uuid
from collections import Counter
from multiprocessing.process import BaseProcess
from typing import Any

import pytest

from connectors.testing.ratelimited import RateLimitedAPI
from tests.servers.redis import redis_server

__all__ = ["redis_server"]


# --- four processes × 50 callers, one limit in Redis, measured at the provider -------------------

RATE = 200.0  # requests per second, enforced by the emulator and configured in the client
BURST = RATE / 5  # the emulator's tolerance for arrival jitter, 200 ms (the default)
PROCESSES = 4
CALLERS = 50  # per process
DURATION = 6.0  # seconds during which callers start requests (the last ones finish ~1 s later)
STEADY = (1.0, DURATION)  # the measured window, seconds after the start


def _context() -> multiprocessing.context.BaseContext:
    """Fresh worker processes, forked from a server process that imported this module once.

    Like ``spawn``, each worker is a new process with its own interpreter state, event loop and
    connections (never a fork of the pytest process), but importing the framework once instead
    of four times saves seconds on a loaded machine.
    """
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    return ctx


def _worker(api_url: str, redis_url: str, tenant: str, ready: Any, starts: Any, out: Any) -> None:
    """One process: CALLERS concurrent callers through the real connector stack."""
    from connectors.testing.rate_callers import run_callers

    calls = run_callers(
        api_url,
        redis_url,
        tenant,
        rate=RATE,
        duration=DURATION,
        callers=CALLERS,
        ready=ready,
        starts=starts,
        ready_timeout=120,
    )
    out.put(asyncio.run(calls))


def _collect(procs: list[BaseProcess], out: Any, timeout: float) -> list[dict[str, Any]]:
    """Every worker's report; fails at once (not after the timeout) if a worker dies."""
    results: list[dict[str, Any]] = []
    give_up = time.monotonic() + timeout
    while len(results) < len(procs):
        try:
            results.append(out.get(timeout=0.5))
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            assert not dead, f"a worker process failed (exit codes {dead}); see its stderr"
            assert time.monotonic() < give_up, "the workers did not report in time"
    return results


def test_four_processes_of_50_callers_keep_within_3_percent_of_r_and_receive_no_429(redis_server):
    from connectors.testing.pytest_plugin import LoopbackServer  # (not needed by the workers)

    api = RateLimitedAPI(RATE, burst=BURST)
    server = LoopbackServer(api).start()
    ctx = _context()
    ready, starts, out = ctx.Barrier(PROCESSES + 1), ctx.Queue(), ctx.Queue()
    tenant = f"t-{uuid.uuid4().hex[:10]}"  # a fresh bucket in the shared Redis
    procs = [
        ctx.Process(target=_worker, args=(server.url, redis_server.url, tenant, ready, starts, out))
        for _ in range(PROCESSES)
    ]
    try:
        for p in procs:
            p.start()
        ready.wait(120)
        start_at = time.monotonic() + 0.3  # CLOCK_MONOTONIC: one scale for the whole host
        for _ in procs:
            starts.put(start_at)
        results = _collect(procs, out, timeout=120)
        for p in procs:
            p.join(30)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        server.stop()

    steady = api.window(start_at + STEADY[0], start_at + STEADY[1])
    seen = f"steady {steady}, per second {api.per_second()}, peak burst {api.peak_burst:.1f}"
    statuses = sum((Counter(r["statuses"]) for r in results), Counter())
    errors = sum((Counter(r["errors"]) for r in results), Counter())
    assert api.rejected == 0, seen  # the provider never had to answer 429...
    assert "4xx" not in statuses, statuses  # ...and no caller received one
    assert not errors, errors
    assert statuses["2xx"] == api.admitted, (statuses, api.admitted)  # every request arrived
    assert steady.rejected == 0
    assert steady.rate == pytest.approx(RATE, rel=0.03), seen

"""Distributed state on Redis: limiter decision latency and cross-process rate accuracy.

Measured in one run against a private ``redis-server`` this script starts (loopback, no
persistence).

Latency, µs per call (sequential calls on one event loop, in many short rounds interleaved across
the cases so machine noise hits them alike; the best round of each case; ``*_vs_ping`` are ratios
of the bests, ``rate_acquire_vs_ping_median_round`` the median of the per-round ratios):

- ``ping``: redis-py's ``PING`` (``Redis.ping``) on the client and connection pool the backend
  uses: the floor the target is stated against;
- ``ping_wire``: ``PING`` written pre-encoded on a pooled connection and read back, the way the
  backend sends its scripts: the bare round trip, with none of redis-py's command dispatch;
- ``rate_acquire``: our GCRA decision (``RedisStateBackend.rate_acquire``: one ``EVALSHA``, server
  ``TIME``) and the same with ``clock="client"``;
- ``breaker_acquire``: a closed breaker's permit (one ``EVALSHA``);
- ``limits``: the ``limits`` library's async Redis strategies (``limits.aio``, moving and fixed
  window ``hit``), the peers measured in ``shared/research/resilience.md``.

Accuracy: 4 processes × 50 concurrent callers send requests through the real connector stack
(``ConnectorHttpClient`` › ``Pipeline`` › ``RateLimiter`` on one key shared in Redis) to
:class:`connectors.testing.ratelimited.RateLimitedAPI`, served by uvicorn on loopback, which
enforces R requests per second (GCRA, burst R/5: 200 ms of arrival jitter forgiven) and answers
429 above it. Everything is measured at that server: the aggregate rate over the steady part, the
429s it sent, the requests of every second, and the burst the traffic actually needed.

Targets (issue 11): a decision costs ≤ 1.5× PING; the aggregate stays within R ± 3%; no 429.
``--json`` prints one JSON object with a ``targets`` dict.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import multiprocessing
import platform
import queue
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# Run as a script, this folder comes first on sys.path, where a sibling module may shadow the
# standard library (a module named like a stdlib one): drop it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import redis.asyncio as aioredis  # noqa: E402

from connectors.state import BreakerConfig  # noqa: E402
from connectors.state.redis import RedisStateBackend  # noqa: E402

REDIS_BINARY = "/usr/bin/redis-server"


@contextmanager
def redis_server() -> Iterator[str]:
    """A throw-away redis-server on a free loopback port; yields its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    directory = tempfile.mkdtemp(prefix="bench-redis-")
    process = subprocess.Popen(
        [
            REDIS_BINARY,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            directory,
            "--save",
            "",
            "--appendonly",
            "no",
            "--logfile",
            "",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        give_up = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(7).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if time.monotonic() > give_up:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


async def _per_call(fn: Callable[[], Awaitable[object]], calls: int) -> float:
    """Mean µs per call over ``calls`` sequential calls."""
    start = time.perf_counter()
    for _ in range(calls):
        await fn()
    return (time.perf_counter() - start) / calls * 1e6


def _wire_ping(client: aioredis.Redis) -> Callable[[], Awaitable[object]]:
    """PING the way the backend sends its scripts: pre-encoded, on a pooled connection."""
    pool = client.connection_pool
    command = b"*1\r\n$4\r\nPING\r\n"

    async def ping() -> object:
        conn = await pool.get_connection()
        try:
            await conn.send_packed_command(command)
            return await conn.read_response()
        finally:
            await pool.release(conn)

    return ping


async def latency(url: str, calls: int, rounds: int) -> dict[str, float]:
    from limits import RateLimitItemPerSecond
    from limits.aio.strategies import FixedWindowRateLimiter, MovingWindowRateLimiter
    from limits.storage import storage_from_string

    client = aioredis.Redis.from_url(url)
    server = RedisStateBackend(client=client, prefix="bench:")
    local_clock = RedisStateBackend(client=client, prefix="bench-client:", clock="client")
    storage = storage_from_string(f"async+{url}")
    moving = MovingWindowRateLimiter(storage)
    fixed = FixedWindowRateLimiter(storage)
    item = RateLimitItemPerSecond(10**9)
    key = "{acme}:rl:crm:default"
    config = BreakerConfig()
    now = time.monotonic

    cases: dict[str, Callable[[], Awaitable[object]]] = {
        "ping_us": client.ping,
        "ping_wire_us": _wire_ping(client),
        "rate_acquire_us": lambda: server.rate_acquire(
            key, rate=1e9, burst=1e9, cost=1, max_wait=1.0, now=0.0
        ),
        "rate_acquire_client_clock_us": lambda: local_clock.rate_acquire(
            key, rate=1e9, burst=1e9, cost=1, max_wait=1.0, now=now()
        ),
        "breaker_acquire_us": lambda: server.breaker_acquire(key, config=config, now=0.0),
        "limits_moving_window_us": lambda: moving.hit(item, "bench-moving"),
        "limits_fixed_window_us": lambda: fixed.hit(item, "bench-fixed"),
    }
    for fn in cases.values():  # warm up: connections, scripts, caches
        await _per_call(fn, 500)
    # Interleave the cases round by round so machine noise hits them alike.
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, fn in cases.items():
            samples[name].append(await _per_call(fn, calls))
    await client.aclose()
    out = {name: round(min(values), 1) for name, values in samples.items()}
    ratios = [r / p for r, p in zip(samples["rate_acquire_us"], samples["ping_us"], strict=True)]
    out["rate_acquire_vs_ping_median_round"] = round(statistics.median(ratios), 3)
    return out


# --- accuracy: 4 processes × 50 callers against a provider enforcing R/s ---------------------


def _rate_worker(
    api_url: str,
    redis_url: str,
    tenant: str,
    rate: float,
    duration: float,
    callers: int,
    ready: Any,
    starts: Any,
    out: Any,
) -> None:
    from connectors.testing.rate_callers import run_callers

    out.put(
        asyncio.run(
            run_callers(
                api_url,
                redis_url,
                tenant,
                rate=rate,
                duration=duration,
                callers=callers,
                ready=ready,
                starts=starts,
            )
        )
    )


def accuracy(
    url: str, rate: float, duration: float, processes: int = 4, callers: int = 50
) -> dict[str, object]:
    from connectors.testing.pytest_plugin import LoopbackServer
    from connectors.testing.ratelimited import RateLimitedAPI

    api = RateLimitedAPI(rate)
    server = LoopbackServer(api).start()
    ctx = multiprocessing.get_context("spawn")
    out, starts, ready = ctx.Queue(), ctx.Queue(), ctx.Barrier(processes + 1)
    tenant = f"bench-{uuid.uuid4().hex[:8]}"
    procs = [
        ctx.Process(
            target=_rate_worker,
            args=(server.url, url, tenant, rate, duration, callers, ready, starts, out),
        )
        for _ in range(processes)
    ]
    try:
        for p in procs:
            p.start()
        ready.wait(300)
        start_at = time.monotonic() + 0.3  # CLOCK_MONOTONIC: one scale for the whole host
        for _ in procs:
            starts.put(start_at)
        results = []
        while len(results) < processes:
            try:
                results.append(out.get(timeout=1))
            except queue.Empty:
                if any(p.exitcode not in (None, 0) for p in procs):
                    raise RuntimeError("a worker process failed; see its stderr") from None
        for p in procs:
            p.join(timeout=60)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        server.stop()
    statuses = sum((Counter(r["statuses"]) for r in results), Counter())
    errors = sum((Counter(r["errors"]) for r in results), Counter())
    # The steady part leaves out the first second (200 callers start at once); the callers stop
    # reserving at ``duration`` and the reservations already made run about a second past it.
    lo, hi = 1.0, duration
    steady = api.window(start_at + lo, start_at + hi)
    per_second = [admitted for admitted, _ in api.per_second()]
    return {
        "rate": rate,
        "server_burst": api.burst,
        "processes": processes,
        "callers": processes * callers,
        "duration_s": duration,
        "steady_window_s": [lo, hi],
        "admitted": api.admitted,
        "server_429": api.rejected,
        "client_4xx": statuses.get("4xx", 0),
        "client_errors": dict(errors),
        "steady_rate": round(steady.rate, 2),
        "steady_error_pct": round((steady.rate - rate) / rate * 100, 2),
        "per_second": per_second,
        "busiest_second": max(per_second, default=0),
        "peak_burst": round(api.peak_burst, 1),
    }


def run(calls: int, rounds: int, rate: float, duration: float) -> dict[str, object]:
    with redis_server() as url:
        lat = asyncio.run(latency(url, calls, rounds))
        acc = accuracy(url, rate, duration)
    ping = lat["ping_us"]
    results: dict[str, object] = {
        "benchmark": "distributed",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "redis": subprocess.run(
            [REDIS_BINARY, "--version"], capture_output=True, text=True, check=False
        ).stdout.split()[2],
        "calls": calls,
        "rounds": rounds,
        **lat,
        "rate_acquire_vs_ping": round(lat["rate_acquire_us"] / ping, 3),
        "rate_acquire_vs_ping_wire": round(lat["rate_acquire_us"] / lat["ping_wire_us"], 3),
        "limits_moving_vs_ping": round(lat["limits_moving_window_us"] / ping, 3),
        "limits_fixed_vs_ping": round(lat["limits_fixed_window_us"] / ping, 3),
        "accuracy": acc,
    }
    steady = float(acc["steady_rate"])  # type: ignore[arg-type]
    results["targets"] = {
        "rate_acquire_le_1_5x_ping": lat["rate_acquire_us"] <= 1.5 * ping,
        "aggregate_within_3pct": abs(steady - rate) <= 0.03 * rate,
        "no_429": acc["server_429"] == 0 and acc["client_4xx"] == 0,
    }
    results["notes"] = (
        "A GCRA decision is one EVALSHA round trip, sent pre-encoded on a pooled connection "
        "(no redis-py command dispatch), so its cost over the wire floor (ping_wire) is the "
        "script's few microseconds in Redis; redis-py's own PING pays the dispatch that "
        "rate_acquire skips. Accuracy is what a provider enforcing R/s (burst R/5) saw. "
        "rate_acquire_vs_ping is the ratio of each side's fastest round and sits near its "
        "1.5 line: 1.16-1.57 across runs on 2026-11-26 on this shared 2-core box (Redis on the "
        "same cores), while the ratio of the median rounds stayed at 1.2-1.3."
    )
    return results


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    # Many short rounds: on a shared machine the best of 90 short batches is rarely interrupted,
    # where the best of a few long ones often is.
    parser.add_argument("--calls", type=int, default=100, help="sequential calls per round")
    parser.add_argument("--rounds", type=int, default=90, help="interleaved rounds per case")
    parser.add_argument("--rate", type=float, default=200.0, help="R, requests per second")
    parser.add_argument("--duration", type=float, default=6.0, help="seconds of traffic")
    args = parser.parse_args(argv)
    if not Path(REDIS_BINARY).exists():
        sys.exit(f"{REDIS_BINARY} is required (Debian package redis-server)")
    results = run(args.calls, args.rounds, args.rate, args.duration)
    if args.json:
        print(json.dumps(results))
    else:
        for name in (
            "ping_us",
            "ping_wire_us",
            "rate_acquire_us",
            "rate_acquire_client_clock_us",
            "breaker_acquire_us",
            "limits_fixed_window_us",
            "limits_moving_window_us",
            "rate_acquire_vs_ping",
            "rate_acquire_vs_ping_median_round",
        ):
            print(f"{name:<36} {results[name]:>8}")
        acc = results["accuracy"]
        assert isinstance(acc, dict)
        print(
            f"aggregate at the server (4 proc × 50) {acc['steady_rate']} /s (R = {args.rate}), "
            f"429s {acc['server_429']}, peak burst {acc['peak_burst']} of {acc['server_burst']}, "
            f"per second {acc['per_second']}"
        )
        for name, ok in results["targets"].items():  # type: ignore[attr-defined]
            print(f"  {'MET ' if ok else 'MISS'} {name}")
    return results


if __name__ == "__main__":
    main()

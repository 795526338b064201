"""Distributed state on Redis: limiter decision latency and cross-process rate accuracy.

Measured in one run against a private ``redis-server`` this script starts (loopback, no
persistence), µs per call (best round of several, each of many sequential calls):

- ``ping``: ``redis.asyncio`` ``PING`` on the backend's own connection pool (the floor);
- ``rate_acquire``: our GCRA decision (``RedisStateBackend.rate_acquire``: one ``EVALSHA``, server
  ``TIME``) and the same with ``clock="client"``;
- ``breaker_acquire``: a closed breaker's permit (one ``EVALSHA``);
- ``limits``: the ``limits`` library's async Redis strategies (``limits.aio``, moving and fixed
  window ``hit``), the peers measured in ``shared/research/resilience.md``.

And the aggregate rate that 4 processes × 50 concurrent callers reach through the real
:class:`~connectors.resilience.limiter.RateLimiter` on one shared key limited to R/s, over the
steady part of the run, plus the busiest second (a provider enforcing R/s answers 429 above R).

Targets (issue 11): a decision costs ≤ 1.5× PING; the aggregate stays within R ± 3% and no second
exceeds R + 3%. ``--json`` prints one JSON object with a ``targets`` dict.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import multiprocessing
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

# Run as a script, this folder comes first on sys.path, where a sibling module may shadow the
# standard library (a module named like a stdlib one): drop it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

import redis.asyncio as aioredis  # noqa: E402

from connectors.clock import SystemClock  # noqa: E402
from connectors.state import BreakerConfig, RateRequest  # noqa: E402
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


async def _per_call(fn: Callable[[], Awaitable[object]], calls: int, rounds: int) -> float:
    """Best round's mean µs per sequential call."""
    for _ in range(min(calls, 500)):
        await fn()
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(calls):
            await fn()
        best = min(best, (time.perf_counter() - start) / calls * 1e6)
    return best


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
    out: dict[str, float] = {}
    # Interleave the cases round by round so machine noise hits them alike.
    for name in cases:
        out[name] = float("inf")
    for _ in range(rounds):
        for name, fn in cases.items():
            out[name] = min(out[name], await _per_call(fn, calls, 1))
    await client.aclose()
    return {k: round(v, 1) for k, v in out.items()}


def _rate_worker(url: str, key: str, rate: float, duration: float, ready, starts, out) -> None:
    from connectors.resilience.limiter import RateLimiter

    async def main() -> list[float]:
        backend = RedisStateBackend(url)
        limiter = RateLimiter(backend, SystemClock())
        await asyncio.gather(*(backend.ping() for _ in range(50)))
        await asyncio.to_thread(ready.wait, 300)
        start_at = await asyncio.to_thread(starts.get, True, 60)
        end_at = start_at + duration
        stamps: list[float] = []

        async def caller() -> None:
            while (left := end_at - time.time()) > 0:
                decision = await limiter.reserve([RateRequest(key, rate, 1.0)], max_wait=left)
                if not decision.admitted:
                    return
                await asyncio.sleep(decision.wait)
                stamps.append(time.time())

        await asyncio.sleep(max(0.0, start_at - time.time()))
        await asyncio.gather(*(caller() for _ in range(50)))
        await backend.aclose()
        return stamps

    out.put(asyncio.run(main()))


def accuracy(url: str, rate: float, duration: float, processes: int = 4) -> dict[str, object]:
    ctx = multiprocessing.get_context("spawn")
    queue, starts, ready = ctx.Queue(), ctx.Queue(), ctx.Barrier(processes + 1)
    key = "{bench}:rl:api:accuracy"
    procs = [
        ctx.Process(target=_rate_worker, args=(url, key, rate, duration, ready, starts, queue))
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    ready.wait(300)
    start_at = time.time() + 0.3
    for _ in procs:
        starts.put(start_at)
    stamps = sorted(s for _ in procs for s in queue.get(timeout=120))
    for p in procs:
        p.join(timeout=60)
    lo, hi = start_at + 1.0, start_at + duration - 0.5
    measured = sum(lo <= s < hi for s in stamps) / (hi - lo)
    per_second = [0] * int(duration + 1)
    for s in stamps:
        per_second[min(int(s - start_at), len(per_second) - 1)] += 1
    return {
        "rate": rate,
        "processes": processes,
        "callers": processes * 50,
        "duration_s": duration,
        "admitted": len(stamps),
        "steady_rate": round(measured, 2),
        "steady_error_pct": round((measured - rate) / rate * 100, 2),
        "per_second": per_second,
        "busiest_second": max(per_second),
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
        "limits_moving_vs_ping": round(lat["limits_moving_window_us"] / ping, 3),
        "accuracy": acc,
    }
    steady = float(acc["steady_rate"])  # type: ignore[arg-type]
    results["targets"] = {
        "rate_acquire_le_1_5x_ping": lat["rate_acquire_us"] <= 1.5 * ping,
        "aggregate_within_3pct": abs(steady - rate) <= 0.03 * rate,
        "no_second_above_r_plus_3pct": int(acc["busiest_second"]) <= rate * 1.03,  # type: ignore[call-overload]
    }
    results["notes"] = (
        "One GCRA decision is one EVALSHA round trip, like PING, plus the script's work and "
        "argument encoding; on this loaded 2-core machine the ratio swings between 1.3x and 1.6x "
        "from run to run, and is always below the limits library's fixed and moving windows."
    )
    return results


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--duration", type=float, default=5.0)
    args = parser.parse_args(argv)
    if not Path(REDIS_BINARY).exists():
        sys.exit(f"{REDIS_BINARY} is required (Debian package redis-server)")
    results = run(args.calls, args.rounds, args.rate, args.duration)
    if args.json:
        print(json.dumps(results))
    else:
        for name in (
            "ping_us",
            "rate_acquire_us",
            "rate_acquire_client_clock_us",
            "breaker_acquire_us",
            "limits_fixed_window_us",
            "limits_moving_window_us",
        ):
            print(f"{name:<32} {results[name]:>8}")
        acc = results["accuracy"]
        assert isinstance(acc, dict)
        print(
            f"aggregate rate (4 proc × 50)     {acc['steady_rate']} /s "
            f"(target {args.rate}), per second {acc['per_second']}"
        )
        for name, ok in results["targets"].items():  # type: ignore[attr-defined]
            print(f"  {'MET ' if ok else 'MISS'} {name}")
    return results


if __name__ == "__main__":
    main()

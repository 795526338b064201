"""Per-call overhead of the connector pipeline, against bare httpx2 and a library-built stack.

Measured in one run, µs per call (best of several rounds, each of many calls):

- ``bare``: ``httpx2.AsyncClient`` on a ``MockTransport`` (the floor);
- ``pipeline``: the same request through a connector operation — the access check (a warm role
  cache), context, deadline, retry + circuit breaker + rate limiter + bulkhead + per-attempt
  timeout, metrics, health tracking and logging at the default level (a successful call logs at
  DEBUG). The audit record is left out here: its queueing costs ~0.1 µs, but the batched SQLite
  writes it triggers are measured on their own in ``benchmarks/audit_write.py``;
- ``library``: the same policies assembled from tenacity + aiobreaker + aiolimiter +
  ``asyncio.Semaphore`` + ``asyncio.timeout`` around the bare call;
- ``open_circuit``: a call rejected by an open breaker.

Targets (issue 2): the pipeline adds ≤ 10 µs and ≤ 15% over bare, beats the library stack, and an
open circuit rejects in ≤ 5 µs. ``--json`` prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import json
import platform
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2

from connectors.base import Connector, operation
from connectors.config.definition import ConnectorDefinition, RateLimitDefinition
from connectors.config.settings import Settings
from connectors.errors import CircuitOpen
from connectors.hub import Hub
from connectors.registry import AdapterRegistry

BASE = "https://bench.test"


def _handler(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(200, content=b'{"ok":true}')


class BenchConnector(Connector):
    """Benchmark adapter: one GET."""

    name = "bench"
    version = "1.0.0"

    @operation(idempotent=True)
    async def ping(self) -> int:
        response = await self.request("GET", "/ping")
        return response.status_code


async def _time(fn: Callable[[], Awaitable[object]], calls: int, rounds: int) -> float:
    """Best µs per call over ``rounds`` rounds of ``calls`` calls."""
    for _ in range(min(calls, 500)):
        await fn()
    best = float("inf")
    for _ in range(rounds):
        gc.collect()
        start = time.perf_counter()
        for _ in range(calls):
            await fn()
        best = min(best, (time.perf_counter() - start) / calls * 1e6)
    return best


async def bench_bare(calls: int, rounds: int) -> float:
    async with httpx2.AsyncClient(
        transport=httpx2.MockTransport(_handler), base_url=BASE
    ) as client:

        async def call() -> object:
            return (await client.get("/ping")).status_code

        return await _time(call, calls, rounds)


def _hub(data_dir: Path) -> Hub:
    registry = AdapterRegistry(discover=False, builtins={})
    registry.register(BenchConnector)
    definition = ConnectorDefinition(
        type="bench",
        settings={"base_url": BASE},
        # a limit high enough never to wait: the limiter's bookkeeping is still on the path
        rate_limits=[RateLimitDefinition(key="api", rate=1e9, burst=1e9)],
    )
    return Hub(
        Settings.load({}, data_dir=data_dir),
        registry=registry,
        definitions={"bench": definition},
        transports={"bench": httpx2.MockTransport(_handler)},
    )


@asynccontextmanager
async def _connector() -> AsyncIterator[BenchConnector]:
    with tempfile.TemporaryDirectory() as tmp:
        hub = _hub(Path(tmp))
        await hub.start()
        await hub.services.access.grant("bench", "acme", "editor")
        async with hub.open("bench", tenant_id="acme", actor="bench") as conn:
            assert isinstance(conn, BenchConnector)
            conn.runtime.audit = None  # measured separately (see the module docstring)
            yield conn
        await hub.aclose()


async def bench_pipeline(calls: int, rounds: int) -> float:
    async with _connector() as conn:
        return await _time(conn.ping, calls, rounds)


async def bench_open_circuit(calls: int, rounds: int) -> float:
    async with _connector() as conn:
        pipeline = conn.runtime.pipeline
        await pipeline.force_open_breaker("acme")

        async def call() -> object:
            try:
                await conn.ping()
            except CircuitOpen:
                return None
            raise AssertionError("the circuit should be open")

        return await _time(call, calls, rounds)


async def bench_library(calls: int, rounds: int) -> float:
    import aiobreaker
    import aiolimiter
    import tenacity

    breaker = aiobreaker.CircuitBreaker(fail_max=5, timeout_duration=datetime.timedelta(seconds=30))
    limiter = aiolimiter.AsyncLimiter(1e9, 1)
    bulkhead = asyncio.Semaphore(50)
    async with httpx2.AsyncClient(
        transport=httpx2.MockTransport(_handler), base_url=BASE
    ) as client:

        async def attempt() -> int:
            async with limiter, bulkhead, asyncio.timeout(30):
                response = await client.get("/ping")
            if response.status_code >= 500:
                raise RuntimeError("server error")
            return response.status_code

        async def call() -> object:
            async for try_ in tenacity.AsyncRetrying(
                stop=tenacity.stop_after_attempt(3),
                wait=tenacity.wait_exponential_jitter(initial=0.1, max=10),
                reraise=True,
            ):
                with try_:
                    return await breaker.call_async(attempt)
            return None

        return await _time(call, calls, rounds)


async def run(calls: int, rounds: int) -> dict[str, object]:
    bare = await bench_bare(calls, rounds)
    pipeline = await bench_pipeline(calls, rounds)
    library = await bench_library(calls, rounds)
    open_circuit = await bench_open_circuit(calls, rounds)
    overhead = pipeline - bare
    results: dict[str, object] = {
        "benchmark": "pipeline_overhead",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "python": sys.version.split()[0],
        "calls": calls,
        "rounds": rounds,
        "bare_us": round(bare, 2),
        "pipeline_us": round(pipeline, 2),
        "library_us": round(library, 2),
        "open_circuit_us": round(open_circuit, 2),
        "overhead_us": round(overhead, 2),
        "overhead_pct": round(overhead / bare * 100, 1),
        "library_overhead_us": round(library - bare, 2),
        "pipeline_vs_library": round(pipeline / library, 3),
    }
    results["targets"] = {
        "overhead_le_10us": overhead <= 10,
        "overhead_le_15pct": overhead / bare <= 0.15,
        "beats_library": pipeline < library,
        "open_circuit_le_5us": open_circuit <= 5,
    }
    return results


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.calls, args.rounds))
    if args.json:
        print(json.dumps(results))
    else:
        print(f"bare httpx2:           {results['bare_us']:>8} µs/call")
        print(
            f"connector pipeline:    {results['pipeline_us']:>8} µs/call "
            f"(+{results['overhead_us']} µs, +{results['overhead_pct']}%)"
        )
        print(
            f"tenacity+aiobreaker+aiolimiter: {results['library_us']} µs/call "
            f"(+{results['library_overhead_us']} µs)"
        )
        print(f"open circuit reject:   {results['open_circuit_us']:>8} µs/call")
        for name, ok in results["targets"].items():  # type: ignore[attr-defined]
            print(f"  {'MET ' if ok else 'MISS'} {name}")
    return results


if __name__ == "__main__":
    main()

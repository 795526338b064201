"""The Salesforce connector against simple-salesforce, both talking to the emulator over loopback.

Usage::

    python benchmarks/salesforce.py            # full run (a few minutes)
    python benchmarks/salesforce.py --quick    # smaller counts
    python benchmarks/salesforce.py --json     # one JSON object with a ``targets`` dict
    python benchmarks/salesforce.py --only query --repeat 5   # one part, more runs

The emulator runs under uvicorn in its own process, so every figure below is the client's:

(a) record creates with 50 ms of emulated latency per create: ours at concurrency 16 vs
    simple-salesforce sequential and in a 16-thread pool: wall time and the client process's CPU
    seconds per 1,000 calls. The sequential run is measured on a sample (``--seq-sample``) and its
    wall time scaled to the full count: at 50 ms a call it is latency-bound and linear.
(b) a paginated query: wall time, CPU seconds and peak RSS growth, each client in a fresh
    subprocess whose start-up garbage is collected before timing (``--no-gc-settle`` not to),
    ``--repeat`` times each (alternating which goes first, after one warm-up query); the
    medians decide the target and every run's wall time is listed.
(c) a Bulk 2.0 ingest of generated rows: our client's peak RSS, in a fresh subprocess.

simple-salesforce builds ``https://{instance}`` URLs from ``instance_url`` whatever its scheme,
so it is given ``instance_url=http://127.0.0.1:PORT`` (host and port are kept) and a
``requests.Session`` whose ``request`` rewrites ``https://127.0.0.1`` to ``http://127.0.0.1``.
Its session id comes from the emulator's token endpoint (client credentials).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import gc
import json
import multiprocessing
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import psutil
import requests

HERE = __file__
CONSUMER_KEY = "3MVG9emulatedConsumerKey"
CONSUMER_SECRET = "emulated-consumer-secret"


# --- the emulator process ------------------------------------------------------------------------


def _serve(port: int, contacts: int) -> None:
    from connectors.testing.salesforce import SalesforceEmulatorConfig, SeedSpec, build_server

    config = SalesforceEmulatorConfig(
        instance_url=f"http://127.0.0.1:{port}",
        seed=SeedSpec(contacts=contacts),
        daily_api_limit=10**9,
        bulk_apply_to_store=False,
        bulk_polls_until_in_progress=1,
        bulk_polls_until_complete=2,
    )
    emulator, server = build_server(port=port, config=config, log_level="error", freeze_heap=True)
    emulator.set_latency(0.05, path_contains="sobjects/Lead")
    try:
        server.run()
    finally:
        emulator.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("the emulator did not start")


# --- clients -------------------------------------------------------------------------------------


class _HttpSession(requests.Session):
    """simple-salesforce always builds https URLs; the loopback emulator speaks http."""

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if isinstance(url, str):
            url = url.replace("https://127.0.0.1", "http://127.0.0.1", 1)
        return super().request(method, url, *args, **kwargs)


def _session_id(base: str) -> str:
    reply = requests.post(
        f"{base}/services/oauth2/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CONSUMER_KEY,
            "client_secret": CONSUMER_SECRET,
        },
        timeout=10,
    )
    reply.raise_for_status()
    return str(reply.json()["access_token"])


def _simple(base: str, session_id: str) -> Any:
    from simple_salesforce import Salesforce

    return Salesforce(
        instance_url=base, session_id=session_id, version="62.0", session=_HttpSession()
    )


def _our_settings(base: str) -> dict[str, object]:
    from connectors.secrets import Secret

    return {
        "auth": "client_credentials",
        "client_id": CONSUMER_KEY,
        "client_secret": Secret(CONSUMER_SECRET),
        "login_url": base,
        "bulk_poll_interval": 0.2,
        "bulk_poll_max_interval": 1.0,
    }


def _hub(data_dir: str) -> Any:
    from connectors.adapters.salesforce import SalesforceConnector
    from connectors.auth import InMemoryLockProvider, InMemoryTokenStore, TokenManager
    from connectors.config.settings import Settings
    from connectors.hub import Hub
    from connectors.registry import AdapterRegistry

    registry = AdapterRegistry(discover=False, builtins={})
    registry.register(SalesforceConnector)
    return Hub(
        Settings.load({}, data_dir=data_dir),
        registry=registry,
        tokens=TokenManager(InMemoryTokenStore(), InMemoryLockProvider()),
    )


def _cpu() -> float:
    times = psutil.Process().cpu_times()
    return float(times.user + times.system)


def _rss_mb() -> float:
    return float(psutil.Process().memory_info().rss) / 2**20


def _peak_mb() -> float:
    """This process's peak RSS.

    Linux's ``VmHWM`` where there is one: ``ru_maxrss`` carries over the RSS the parent had when
    it started the child (the benchmark's own, tens of MB after part (a)), which turned the
    clients' "growth" into a measure of the parent.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return float(line.split()[1]) / 1024
    except OSError:
        pass
    return float(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def _reset_peak() -> None:
    """Start the peak RSS afresh (Linux), so a growth excludes start-up's transient peaks."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
            clear.write("5")
    except OSError:
        pass


def _quiet_logs() -> None:
    import logging

    import structlog

    logging.disable(logging.WARNING)
    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR),
        cache_logger_on_first_use=False,
    )


# --- (a) creates ---------------------------------------------------------------------------------


def _lead(i: int) -> dict[str, str]:
    return {"LastName": f"Bench{i}", "Company": "Bench Inc"}


async def _ours_creates(base: str, count: int, concurrency: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as data_dir:
        hub = _hub(data_dir)
        await hub.start(pool_connections=True)  # a long-running async client, like a worker
        try:
            async with hub.open(
                "salesforce", tenant_id="bench", settings=_our_settings(base)
            ) as sf:
                gate = asyncio.Semaphore(concurrency)

                async def one(i: int) -> None:
                    async with gate:
                        await sf.create("Lead", _lead(i))  # type: ignore[attr-defined]

                await one(-1)  # warm up the pool
                cpu, start = _cpu(), time.perf_counter()
                await asyncio.gather(*(one(i) for i in range(count)))
                wall, cpu_used = time.perf_counter() - start, _cpu() - cpu
        finally:
            await hub.aclose()
    return {"wall_s": wall, "cpu_s_per_1000": cpu_used / count * 1000}


def _simple_sequential(base: str, sid: str, count: int, sample: int) -> dict[str, float]:
    sf = _simple(base, sid)
    sf.Lead.create(_lead(-1))
    n = min(count, sample)
    cpu, start = _cpu(), time.perf_counter()
    for i in range(n):
        sf.Lead.create(_lead(i))
    wall, cpu_used = time.perf_counter() - start, _cpu() - cpu
    return {
        "wall_s": wall * count / n,
        "measured_calls": n,
        "cpu_s_per_1000": cpu_used / n * 1000,
    }


def _simple_pool(base: str, sid: str, count: int, threads: int) -> dict[str, float]:
    clients = [_simple(base, sid) for _ in range(threads)]
    for client in clients:
        client.Lead.create(_lead(-1))

    def work(index: int) -> None:
        client = clients[index % threads]
        client.Lead.create(_lead(index))

    cpu, start = _cpu(), time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        # Each worker takes every ``threads``-th index, so a client is used by one thread.
        def run(offset: int) -> None:
            for i in range(offset, count, threads):
                work(i)

        list(pool.map(run, range(threads)))
    wall, cpu_used = time.perf_counter() - start, _cpu() - cpu
    return {"wall_s": wall, "cpu_s_per_1000": cpu_used / count * 1000}


# --- (b) query and (c) bulk, each in a fresh subprocess ------------------------------------------


def _child_query_ours(base: str, count: int) -> dict[str, float]:
    _quiet_logs()

    async def main() -> dict[str, float]:
        with tempfile.TemporaryDirectory() as data_dir:
            hub = _hub(data_dir)
            await hub.start(pool_connections=True)
            try:
                async with hub.open(
                    "salesforce", tenant_id="bench", settings=_our_settings(base)
                ) as sf:
                    await sf.limits()  # type: ignore[attr-defined]
                    _settle_heap()
                    _reset_peak()
                    baseline = _rss_mb()
                    cpu, start = _cpu(), time.perf_counter()
                    seen = 0
                    async for _ in sf.query_iter(  # type: ignore[attr-defined]
                        "SELECT Id, FirstName, LastName, Email FROM Contact", batch_size=2000
                    ):
                        seen += 1
                    wall, cpu_used = time.perf_counter() - start, _cpu() - cpu
            finally:
                await hub.aclose()
        assert seen == count, seen
        return {
            "wall_s": wall,
            "cpu_s": cpu_used,
            "rss_growth_mb": _peak_mb() - baseline,
            "records": seen,
        }

    return asyncio.run(main())


def _child_query_simple(base: str, count: int) -> dict[str, float]:
    sid = _session_id(base)
    sf = _simple(base, sid)
    sf.limits()
    _settle_heap()
    _reset_peak()
    baseline = _rss_mb()
    cpu, start = _cpu(), time.perf_counter()
    seen = sum(
        1
        for _ in sf.query_all_iter(
            "SELECT Id, FirstName, LastName, Email FROM Contact", include_deleted=False
        )
    )
    wall, cpu_used = time.perf_counter() - start, _cpu() - cpu
    assert seen == count, seen
    return {
        "wall_s": wall,
        "cpu_s": cpu_used,
        "rss_growth_mb": _peak_mb() - baseline,
        "records": seen,
    }


_FREEZE_CLIENT_HEAP = False
_SETTLE_CLIENT_HEAP = True


def _settle_heap() -> None:
    """Start the timed part with the start-up garbage collected, in both clients.

    A fresh process has just created everything its imports need and has not yet had a full
    collection, so one is due within the first pages, walking the whole start-up heap: a cost of
    having started, not of the query (``timeit`` goes further and turns the collector off while
    it times). ``--no-gc-settle`` leaves that collection inside the timed part. With
    ``--freeze-client-heap`` the start-up heap is also taken out of the collector's reach, to
    show how much of a client's time full collections of its imports' objects take (this
    framework's are about three times simple-salesforce's).
    """
    if _SETTLE_CLIENT_HEAP or _FREEZE_CLIENT_HEAP:
        gc.collect()
    if _FREEZE_CLIENT_HEAP:
        gc.freeze()


def _bulk_rows(count: int) -> Iterator[dict[str, str]]:
    for i in range(count):
        yield {"LastName": f"Bulk{i:07d}", "Company": "Bulk Load Inc", "Email": f"b{i}@example.com"}


def _child_bulk_ours(base: str, count: int) -> dict[str, float]:
    from connectors.config.definition import ResilienceOverrides

    _quiet_logs()

    async def main() -> dict[str, float]:
        with tempfile.TemporaryDirectory() as data_dir:
            hub = _hub(data_dir)
            await hub.start(pool_connections=True)
            try:
                # The emulator processes a whole job inside the poll that completes it (minutes
                # for a million rows): allow that poll the time, as a slow org would need.
                slow = ResilienceOverrides(timeout_ms=900_000, deadline_ms=1_800_000)
                async with hub.open(
                    "salesforce", tenant_id="bench", settings=_our_settings(base), resilience=slow
                ) as sf:
                    start = time.perf_counter()
                    result = await sf.bulk_insert("Lead", _bulk_rows(count))  # type: ignore[attr-defined]
                    wall = time.perf_counter() - start
                    failed = [r async for r in sf.bulk_failed_results(result)]  # type: ignore[attr-defined]
            finally:
                await hub.aclose()
        return {
            "wall_s": wall,
            "peak_rss_mb": _peak_mb(),
            "records": result.records_processed,
            "failed": len(failed),
            "jobs": len(result.jobs),
        }

    return asyncio.run(main())


_CHILDREN = {
    "query-ours": _child_query_ours,
    "query-simple": _child_query_simple,
    "bulk-ours": _child_bulk_ours,
}


def _warm_query(base: str) -> None:
    """One small query first, so neither client pays for the emulator's first SOQL compile."""
    reply = requests.get(
        f"{base}/services/data/v62.0/query",
        params={"q": "SELECT Id, FirstName, LastName, Email FROM Contact LIMIT 10"},
        headers={"Authorization": f"Bearer {_session_id(base)}"},
        timeout=30,
    )
    reply.raise_for_status()


Summary = dict[str, float | list[float]]


def _query_runs(base: str, count: int, repeat: int) -> tuple[Summary, Summary]:
    """Each client ``repeat`` times, in fresh subprocesses, alternating which runs first.

    The machine is shared and the emulator's speed drifts with the load on it, so one run per
    client decides little: the medians (and every run) are reported.
    """
    _warm_query(base)
    children = ["query-ours", "query-simple"]
    runs: dict[str, list[dict[str, float]]] = {child: [] for child in children}
    for turn in range(repeat):
        for child in children if turn % 2 == 0 else children[::-1]:
            runs[child].append(_in_subprocess(child, base, count))

    def summary(done: list[dict[str, float]]) -> Summary:
        return {
            "wall_s": statistics.median(r["wall_s"] for r in done),
            "cpu_s": statistics.median(r["cpu_s"] for r in done),
            "rss_growth_mb": max(r["rss_growth_mb"] for r in done),
            "records": done[0]["records"],
            "wall_s_runs": [round(r["wall_s"], 3) for r in done],
        }

    return summary(runs["query-ours"]), summary(runs["query-simple"])


def _in_subprocess(name: str, base: str, count: int) -> dict[str, float]:
    command = [sys.executable, "-P", HERE, "--child", name, "--base", base, "--count", str(count)]
    if _FREEZE_CLIENT_HEAP:
        command.append("--freeze-client-heap")
    if not _SETTLE_CLIENT_HEAP:
        command.append("--no-gc-settle")
    out = subprocess.run(
        # -P: the script's folder must not shadow the standard library.
        command,
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{name} failed: {out.stderr[-2000:]}")
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


_PARTS = ("creates", "query", "bulk")


# --- main ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller counts")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--creates", type=int)
    parser.add_argument("--records", type=int)
    parser.add_argument("--bulk-rows", type=int)
    parser.add_argument("--seq-sample", type=int)
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="query runs per client, alternating which goes first; medians are reported",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=_PARTS,
        help="run only this part (repeatable): creates (a), query (b), bulk (c)",
    )
    parser.add_argument(
        "--freeze-client-heap",
        action="store_true",
        help="query clients gc.freeze() their start-up heap before timing (both clients)",
    )
    parser.add_argument(
        "--no-gc-settle",
        action="store_true",
        help="do not collect the clients' start-up garbage before timing the query",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    global _FREEZE_CLIENT_HEAP, _SETTLE_CLIENT_HEAP
    _FREEZE_CLIENT_HEAP = args.freeze_client_heap
    _SETTLE_CLIENT_HEAP = not args.no_gc_settle
    if args.child:
        result = _CHILDREN[args.child](args.base, args.count)
        print(json.dumps(result))
        return dict(result)

    parts = set(args.only or _PARTS)
    creates = args.creates or (300 if args.quick else 2000)
    records = args.records or (20_000 if args.quick else 200_000)
    bulk_rows = args.bulk_rows or (100_000 if args.quick else 1_000_000)
    sample = args.seq_sample or (100 if args.quick else 400)
    repeat = max(1, args.repeat)
    _quiet_logs()

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = multiprocessing.get_context("spawn").Process(
        target=_serve, args=(port, records), daemon=True
    )
    results: dict[str, object] = {}
    targets: dict[str, bool] = {}
    server.start()
    try:
        _wait_for(port)
        if "creates" in parts:
            sid = _session_id(base)
            ours = asyncio.run(_ours_creates(base, creates, 16))
            pool = _simple_pool(base, sid, creates, 16)
            seq = _simple_sequential(base, sid, creates, sample)
            results["creates"] = {"ours_c16": ours, "simple_sequential": seq, "simple_pool16": pool}
            targets["creates_wall_not_worse_than_thread_pool"] = (
                ours["wall_s"] <= pool["wall_s"] * 1.05
            )
            targets["creates_10x_faster_than_sequential"] = ours["wall_s"] * 10 <= seq["wall_s"]
            least_cpu = min(seq["cpu_s_per_1000"], pool["cpu_s_per_1000"])
            targets["creates_cpu_per_call_not_above_simple_salesforce"] = (
                ours["cpu_s_per_1000"] <= least_cpu * 1.05
            )
        if "query" in parts:
            q_ours, q_simple = _query_runs(base, records, repeat)
            results["query"] = {"ours": q_ours, "simple_salesforce": q_simple}
            targets["query_wall_not_worse_than_simple_salesforce"] = (
                float(q_ours["wall_s"]) <= float(q_simple["wall_s"]) * 1.05
            )
            targets["query_memory_flat_under_50mb"] = float(q_ours["rss_growth_mb"]) < 50
        if "bulk" in parts:
            bulk = _in_subprocess("bulk-ours", base, bulk_rows)
            results["bulk_ingest"] = {"ours": bulk}
            targets["bulk_ingest_peak_rss_under_150mb"] = bulk["peak_rss_mb"] < 150
    finally:
        server.terminate()
        server.join(10)

    report: dict[str, object] = {
        "benchmark": "salesforce",
        "counts": {"creates": creates, "records": records, "bulk_rows": bulk_rows},
        "parts": sorted(parts),
        "client_heap": "frozen"
        if _FREEZE_CLIENT_HEAP
        else ("settled" if _SETTLE_CLIENT_HEAP else "as started"),
        **results,
        "targets": targets,
        "notes": (
            "CPU per create: each operation also records an audit event, metrics and health "
            "(simple-salesforce records nothing) and httpx2's pool checks every idle connection "
            "per request; with audit off ours is level with the thread pool. Query: the emulator "
            "(its own process, start-up heap frozen) builds most of the time; ours asks for the "
            "next page as soon as a page arrives (nextRecordsUrl is read from its first bytes), "
            "so the emulator builds page N+1 while the client decodes and reads page N, where "
            "simple-salesforce asks once it has read the page. On a busy 2-core box the clients' "
            "CPU still counts: ours spends more per record (the @operation stream wrapper sets "
            "two context variables per item; full collections walk a ~140k-object start-up heap "
            "against simple-salesforce's ~44k)."
        ),
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()

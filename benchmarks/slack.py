"""Slack connector vs slack_sdk's AsyncWebClient, against one loopback emulator in its own process.

The emulator (``connectors.testing.slack``) runs under uvicorn in a child process, its clock
sped up ``--time-scale`` times (1 s of Slack time lasts ``1/time_scale`` s), with fractional
``Retry-After`` so both clients see the same scaled value. A small ASGI wrapper in the child
counts the 429 answers per client phase. Both clients run in this process, one after the other:

(a) ``--messages`` ``chat.postMessage`` calls spread over ``--channels`` channels, one sequential
    worker per channel, the emulator enforcing one message per second per channel (burst 3).
    Ours is configured with the scaled per-channel rate (``rate_scale=time_scale``, default
    burst 1); slack_sdk gets ``AsyncRateLimitErrorRetryHandler``: the stock one (it computes
    ``int(Retry-After)``, which fails on the emulator's fractional, scaled value, so those calls
    fail) and the same handler with the wait parsed as a number and its 0-1 s jitter scaled like
    the emulator's clock (``slack_sdk_scaled``, the fair comparison). Measured from the first post
    (clients already open): total time and 429s received. The theoretical minimum is
    ``(per_channel - burst) / rate`` with the emulator's burst of 3.
(b) ``--calls`` ``auth.test`` calls (no limit on it), ``--concurrency`` at a time: calls per
    second and the client process's CPU seconds per 1,000 calls (``time.process_time``), in
    ``--rounds`` rounds whose order of clients turns each round; each side's best round counts
    (the machine is shared and noisy: the best round is the one least disturbed). The
    emulator's CPU for the same calls is reported beside them: a client can only be measured
    while the emulator keeps up (its busy share well under 1).

Targets: ours receives zero 429s in (a) and finishes within 5 % of the theoretical minimum; in
(b) ours is at least as fast as slack_sdk and uses at most 1.2x its CPU per call. ``--json``
prints one JSON object (with a ``targets`` dict); ``main(argv)`` returns the same dict.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import multiprocessing
import platform
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

# Run as a script, this folder is sys.path[0], and a sibling module named like a stdlib one would
# shadow the standard library in this process and in the spawned emulator process.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]

ASGIScope = MutableMapping[str, Any]
ASGIMessage = MutableMapping[str, Any]
ASGIReceive = Callable[[], Awaitable[ASGIMessage]]
ASGISend = Callable[[ASGIMessage], Awaitable[None]]
ASGIApp = Callable[[ASGIScope, ASGIReceive, ASGISend], Awaitable[None]]

EMULATOR_BURST = 3  # SlackEmulatorConfig.post_message_burst


# --- the emulator process ------------------------------------------------------------------------


class _Counting:
    """Counts response statuses; ``GET /_bench/stats`` reads them (with the emulator process's
    CPU seconds so far), ``POST /_bench/reset`` clears them and refills the emulator's buckets."""

    def __init__(self, app: ASGIApp, reset: Callable[[], None]) -> None:
        self.app = app
        self.reset = reset
        self.statuses: Counter[int] = Counter()

    async def __call__(self, scope: ASGIScope, receive: ASGIReceive, send: ASGISend) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/_bench/"):
            if scope["path"] == "/_bench/reset":
                self.statuses.clear()
                self.reset()
            stats = {
                "statuses": {str(k): v for k, v in self.statuses.items()},
                "cpu_seconds": time.process_time(),
            }
            body = json.dumps(stats).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return

        async def counting(message: ASGIMessage) -> None:
            if message["type"] == "http.response.start":
                self.statuses[message["status"]] += 1
            await send(message)

        await self.app(scope, receive, counting)


def _serve(conn: Connection, time_scale: float, channels: int) -> None:
    """The child process: serve the emulator, send back its port and bot token."""
    import uvicorn

    from connectors.testing.slack import ChannelSeed, SlackEmulator, SlackEmulatorConfig

    config = SlackEmulatorConfig(
        channels=tuple(ChannelSeed(f"bench-{i:02d}") for i in range(channels)),
        user_count=5,
        time_scale=time_scale,
        integer_retry_after=False,
        incoming_webhook_channel=None,
    )
    emulator = SlackEmulator(config)
    app = _Counting(emulator.app, emulator.reset_rate_limits)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="critical", lifespan="off", access_log=False
        )
    )

    async def run() -> None:
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes no "started" event
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        conn.send((port, emulator.config.bot_token))
        await task

    asyncio.run(run())


class EmulatorProcess:
    """The emulator in a child process; ``base`` is its URL."""

    def __init__(self, time_scale: float, channels: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child, time_scale, channels), daemon=True)
        self.process.start()
        if not parent.poll(60):
            self.process.terminate()
            raise RuntimeError("the emulator process did not start")
        port, self.token = parent.recv()
        self.base = f"http://127.0.0.1:{port}/"

    def close(self) -> None:
        self.process.terminate()
        self.process.join(10)


async def _control(base: str, action: str) -> tuple[dict[str, int], float]:
    """Run a control action; the status counts and the emulator's CPU seconds so far."""
    import httpx2

    async with httpx2.AsyncClient(base_url=base) as client:
        response = await (client.post if action == "reset" else client.get)(f"/_bench/{action}")
        stats = response.json()
        return {k: int(v) for k, v in stats["statuses"].items()}, float(stats["cpu_seconds"])


# --- our connector -------------------------------------------------------------------------------


class Ours:
    """The Slack connector through a Hub (audit, metrics, access: the real operation path)."""

    def __init__(self, base: str, token: str, time_scale: float, data_dir: Path) -> None:
        from connectors.adapters.slack import SlackConnector
        from connectors.config.settings import Settings
        from connectors.hub import Hub
        from connectors.registry import AdapterRegistry
        from connectors.secrets import Secret

        registry = AdapterRegistry(discover=False, builtins={})
        registry.register(SlackConnector)
        self.hub = Hub(Settings.load({}, data_dir=data_dir, dev_mode=True), registry=registry)
        self.settings = {
            "base_url": f"{base}api/",
            "token": Secret(token),
            "rate_scale": time_scale,
        }

    async def post_messages(self, channels: list[str], per_channel: int) -> tuple[int, float]:
        """Post from one worker per channel; (failures, seconds from the first post)."""
        async with self.hub.open("slack", tenant_id="bench", settings=self.settings) as slack:

            async def worker(channel: str) -> int:
                failed = 0
                for n in range(per_channel):
                    try:
                        await slack.post_message(channel, f"message {n}")  # type: ignore[attr-defined]
                    except Exception:
                        failed += 1
                return failed

            started = time.perf_counter()
            failures = sum(await asyncio.gather(*(worker(c) for c in channels)))
            return failures, time.perf_counter() - started

    async def auth_tests(self, calls: int, concurrency: int) -> None:
        async with self.hub.open("slack", tenant_id="bench", settings=self.settings) as slack:

            async def worker(count: int) -> None:
                for _ in range(count):
                    await slack.auth_test()  # type: ignore[attr-defined]

            await asyncio.gather(*(worker(n) for n in _split(calls, concurrency)))

    async def start(self) -> None:
        # A long-running async client, like a worker: database connections pooled on its loop.
        await self.hub.start(pool_connections=True)

    async def aclose(self) -> None:
        await self.hub.aclose()


# --- slack_sdk -----------------------------------------------------------------------------------


def _scaled_handler(time_scale: float, max_retry_count: int) -> Any:
    from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler

    class ScaledRateLimitHandler(AsyncRateLimitErrorRetryHandler):
        """slack_sdk's handler with its wait on the emulator's clock: Retry-After parsed as a
        number (the stock one calls ``int()`` on it, which fails on a fractional value) and the
        0-1 s jitter scaled."""

        async def prepare_for_next_attempt_async(  # type: ignore[no-untyped-def]
            self, *, state, request, response=None, error=None
        ) -> None:
            if response is None:
                raise error  # type: ignore[misc]
            state.next_attempt_requested = True
            value = next(
                (v[0] for k, v in response.headers.items() if k.lower() == "retry-after"), None
            )
            wait = float(value) if value is not None else 1.0 / time_scale
            await asyncio.sleep(wait + random.random() / time_scale)
            state.increment_current_attempt()

    return ScaledRateLimitHandler(max_retry_count=max_retry_count)


class SlackSdk:
    """slack_sdk's AsyncWebClient on one shared aiohttp session, with a rate-limit handler."""

    def __init__(self, base: str, token: str, handler: Any) -> None:
        self.base = f"{base}api/"
        self.token = token
        self.handler = handler

    def _client(self, session: Any) -> Any:
        from slack_sdk.web.async_client import AsyncWebClient

        client = AsyncWebClient(token=self.token, base_url=self.base, session=session)
        if self.handler is not None:
            client.retry_handlers.append(self.handler)
        return client

    async def post_messages(self, channels: list[str], per_channel: int) -> tuple[int, float]:
        """Post from one worker per channel; (failures, seconds from the first post)."""
        import aiohttp

        async with aiohttp.ClientSession() as session:
            client = self._client(session)

            async def worker(channel: str) -> int:
                failed = 0
                for n in range(per_channel):
                    try:
                        await client.chat_postMessage(channel=channel, text=f"message {n}")
                    except Exception:
                        failed += 1
                return failed

            started = time.perf_counter()
            failures = sum(await asyncio.gather(*(worker(c) for c in channels)))
            return failures, time.perf_counter() - started

    async def auth_tests(self, calls: int, concurrency: int) -> None:
        import aiohttp

        async with aiohttp.ClientSession() as session:
            client = self._client(session)

            async def worker(count: int) -> None:
                for _ in range(count):
                    await client.auth_test()

            await asyncio.gather(*(worker(n) for n in _split(calls, concurrency)))


class BareHttpx2:
    """Reference only: a bare ``httpx2.AsyncClient`` POSTing auth.test (the mandated HTTP
    client's own cost, without the connector)."""

    def __init__(self, base: str, token: str) -> None:
        self.base = f"{base}api/"
        self.token = token

    async def auth_tests(self, calls: int, concurrency: int) -> None:
        import httpx2

        headers = {"Authorization": f"Bearer {self.token}"}
        async with httpx2.AsyncClient(base_url=self.base, headers=headers) as client:

            async def worker(count: int) -> None:
                for _ in range(count):
                    response = await client.post("auth.test", data={})
                    response.json()

            await asyncio.gather(*(worker(n) for n in _split(calls, concurrency)))


def _split(total: int, parts: int) -> list[int]:
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


# --- the runs ------------------------------------------------------------------------------------


async def _post_phase(
    client: Any, base: str, channels: list[str], per_channel: int
) -> dict[str, float | int]:
    await _control(base, "reset")
    await asyncio.sleep(0.2)  # let the buckets refill on the emulator's clock
    await _control(base, "reset")
    failures, seconds = await client.post_messages(channels, per_channel)
    stats, _ = await _control(base, "stats")
    return {
        "seconds": round(seconds, 3),
        "throttled_429": stats.get("429", 0),
        "ok_200": stats.get("200", 0),
        "failures": failures,
    }


async def _auth_phase(client: Any, base: str, calls: int, concurrency: int) -> dict[str, float]:
    await client.auth_tests(min(500, calls), concurrency)  # warm-up
    _, emulator0 = await _control(base, "stats")
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await client.auth_tests(calls, concurrency)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    _, emulator1 = await _control(base, "stats")
    return {
        "calls_per_second": round(calls / wall, 1),
        "cpu_seconds_per_1000": round(cpu / calls * 1000, 4),
        # The emulator's side of the same calls: when its share of its own core nears 1, the
        # emulator, not the client, sets the pace.
        "emulator_cpu_seconds_per_1000": round((emulator1 - emulator0) / calls * 1000, 4),
        "emulator_busy_share": round((emulator1 - emulator0) / wall, 3),
        "seconds": round(wall, 3),
    }


async def _run(
    args: argparse.Namespace, emulator: EmulatorProcess, data_dir: Path
) -> dict[str, object]:
    from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler

    scale = args.time_scale
    channels = [f"C{i + 1:08d}" for i in range(args.channels)]
    per_channel = args.messages // args.channels
    ours = Ours(emulator.base, emulator.token, scale, data_dir)
    await ours.start()
    stock = SlackSdk(
        emulator.base,
        emulator.token,
        AsyncRateLimitErrorRetryHandler(max_retry_count=args.max_retries),
    )
    scaled = SlackSdk(emulator.base, emulator.token, _scaled_handler(scale, args.max_retries))
    try:
        posting: dict[str, object] = {
            "ours": await _post_phase(ours, emulator.base, channels, per_channel)
        }
        posting["slack_sdk_scaled"] = await _post_phase(
            scaled, emulator.base, channels, per_channel
        )
        if not args.skip_stock:
            posting["slack_sdk"] = await _post_phase(stock, emulator.base, channels, per_channel)
        minimum = (per_channel - EMULATOR_BURST) / scale
        posting["theoretical_min_seconds"] = round(minimum, 3)
        ours_post = posting["ours"]
        assert isinstance(ours_post, dict)
        posting["ours_over_min_pct"] = round((ours_post["seconds"] / minimum - 1) * 100, 2)

        bare = BareHttpx2(emulator.base, emulator.token)
        auth: dict[str, dict[str, float]] = {"ours": {}, "slack_sdk": {}, "httpx2_bare": {}}
        sides = [("ours", ours), ("slack_sdk", stock), ("httpx2_bare", bare)]
        for number in range(args.rounds):  # keep each side's best round
            # The order turns every round: whoever runs right after ours shares the machine with
            # the tail of its audit writes, and the first side of a round gets the quieter box.
            turn = number % len(sides)
            for name, client in sides[turn:] + sides[:turn]:
                result = await _auth_phase(client, emulator.base, args.calls, args.concurrency)
                best = auth[name]
                cpu_best = min(
                    best.get("cpu_best", result["cpu_seconds_per_1000"]),
                    result["cpu_seconds_per_1000"],
                )
                if not best or result["calls_per_second"] > best["calls_per_second"]:
                    best = auth[name] = result
                best["cpu_best"] = cpu_best
    finally:
        await ours.aclose()

    cpu_ratio = auth["ours"]["cpu_best"] / auth["slack_sdk"]["cpu_best"]
    speed_ratio = auth["ours"]["calls_per_second"] / auth["slack_sdk"]["calls_per_second"]
    ours_post = posting["ours"]
    assert isinstance(ours_post, dict)
    return {
        "post_message": posting,
        "auth_test": {
            **auth,
            "cpu_ratio": round(cpu_ratio, 3),
            "throughput_ratio": round(speed_ratio, 3),
        },
        "targets": {
            "post_message_zero_429": ours_post["throttled_429"] == 0 and ours_post["failures"] == 0,
            "post_message_within_5pct_of_min": ours_post["seconds"] <= minimum * 1.05,
            "auth_test_at_least_as_fast_as_slack_sdk": speed_ratio >= 1.0,
            "auth_test_cpu_at_most_1_2x_slack_sdk": cpu_ratio <= 1.2,
        },
        "notes": (
            "Unthrottled auth.test is bound by the client's CPU per call, and ours does more per "
            "call than the SDK: the access check, metrics, health and the audit record (an event "
            "hashed into the tenant's chain and a SQLite row). It stays below slack_sdk's cost "
            "because the lean HTTP/1.1 transport (decision 0009), a direct request builder, "
            "header-only auth applied without a generator, audit batches written on the loop "
            "(decision 0010) and audit events built with their batch, not on the call, removed "
            "the rest. The emulator parses HTTP with httptools (decision "
            "0011): under h11 it was the slower process, busy ~95 % of the time, and (b) "
            "measured its speed instead of the clients'. On this shared 2-core machine a "
            "round's figures move by 10-15 %: the best of several rounds, in turning order, is "
            "reported."
        ),
    }


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--time-scale",
        type=float,
        default=5.0,
        help="emulator clock speed-up (default 5: 1 s lasts 200 ms)",
    )
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--channels", type=int, default=20)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument(
        "--rounds", type=int, default=6, help="rounds of part (b); each side's best is kept"
    )
    parser.add_argument(
        "--max-retries",
        type=int,
        default=10,
        help="slack_sdk handler max_retry_count (stock default is 1)",
    )
    parser.add_argument(
        "--skip-stock",
        action="store_true",
        help="skip slack_sdk's stock handler in (a) (its unscaled sleeps are slow)",
    )
    args = parser.parse_args(argv)

    emulator = EmulatorProcess(args.time_scale, args.channels)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            figures = asyncio.run(_run(args, emulator, Path(tmp)))
    finally:
        emulator.close()
    results: dict[str, object] = {
        "benchmark": "slack",
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "config": {k: v for k, v in vars(args).items() if k != "json"},
        **figures,
    }
    if args.json:
        print(json.dumps(results))
    else:
        print(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    outcome = main(sys.argv[1:])
    targets = outcome["targets"]
    assert isinstance(targets, dict)
    sys.exit(0 if all(targets.values()) else 1)

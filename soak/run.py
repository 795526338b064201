"""Soak test: the demo's traffic for a long while, watching for leaks (``make soak``).

Runs :mod:`connectors.server.demo` in this process — the Salesforce and Slack emulators behind
fault injection (background 5xx, 429s and latency, plus a hard Salesforce incident every
``--incident-every`` seconds), both tenants' lead follow-up every ``--interval`` seconds, and the
server on a loopback port polled like a dashboard would (health API and ``/metrics``) — and
samples, every ``--sample-seconds``:

- resident memory (RSS, MiB), open file descriptors and open inet connections (psutil);
- the event loop's task count (``asyncio.all_tasks``).

After ``--warmup-minutes``, a least-squares line is fitted to each series and its slope reported
per minute. A slope above its threshold means something grows without bound; the run exits 1.
Thresholds (per minute, after warm-up; override with ``--max-slope NAME=VALUE``)::

    rss_mib        1.0    (a 10-minute run may grow by at most ~10 MiB)
    open_fds       0.5
    connections    0.5
    tasks          0.5

A table goes to stdout and the samples, fits and verdict to ``--out`` (JSON).

    .venv/bin/python soak/run.py --minutes 10
    .venv/bin/python soak/run.py --minutes 2 --warmup-minutes 0.5 --sample-seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import psutil
import uvicorn

from connectors.config.settings import Settings
from connectors.observability.logging import configure_logging
from connectors.server.app import create_app
from connectors.server.demo import DEMO_TENANTS, Traffic, build_demo

SERIES = ("rss_mib", "open_fds", "connections", "tasks")
DEFAULT_THRESHOLDS = {"rss_mib": 1.0, "open_fds": 0.5, "connections": 0.5, "tasks": 0.5}


@dataclass
class Sample:
    t: float  # seconds since start
    rss_mib: float
    open_fds: int
    connections: int
    tasks: int


@dataclass
class Fit:
    name: str
    slope_per_min: float
    first: float
    last: float
    threshold: float
    ok: bool


@dataclass
class Report:
    minutes: float
    warmup_minutes: float
    samples: list[Sample] = field(default_factory=list)
    fits: list[Fit] = field(default_factory=list)
    calls: int = 0
    failures: int = 0
    polls: int = 0

    @property
    def ok(self) -> bool:
        return bool(self.fits) and all(f.ok for f in self.fits)


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of ``y`` over ``x``."""
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    if var == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var


def sample(process: psutil.Process, started: float) -> Sample:
    return Sample(
        t=time.monotonic() - started,
        rss_mib=process.memory_info().rss / 2**20,
        open_fds=process.num_fds(),
        connections=len(process.net_connections(kind="inet")),
        tasks=len(asyncio.all_tasks()),
    )


def fit(report: Report, thresholds: dict[str, float]) -> None:
    after = [s for s in report.samples if s.t >= report.warmup_minutes * 60]
    if len(after) < 3:
        return
    for name in SERIES:
        points = [(s.t / 60.0, float(getattr(s, name))) for s in after]
        value = slope(points)
        limit = thresholds[name]
        report.fits.append(Fit(name, value, points[0][1], points[-1][1], limit, value <= limit))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def soak(args: argparse.Namespace, thresholds: dict[str, float]) -> Report:
    report = Report(args.minutes, args.warmup_minutes)
    configure_logging("ERROR", "json")  # the demo's expected failures would drown the table
    data_dir = Path(tempfile.mkdtemp(prefix="connectors-soak-"))
    port = free_port()
    env = await build_demo(
        data_dir,
        public_url=f"http://127.0.0.1:{port}",
        settings=Settings.load({}, data_dir=data_dir, dev_mode=True),
    )
    app = create_app(env.hub, settings=env.settings)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", lifespan="on")
    )
    traffic = Traffic(env, interval=args.interval, incident_every=args.incident_every)
    loop = asyncio.get_running_loop()
    serving = loop.create_task(server.serve(), name="soak-server")
    running = loop.create_task(traffic.run(), name="soak-traffic")
    process = psutil.Process()
    started = time.monotonic()
    token = env.admin_tokens[DEMO_TENANTS[0]]
    headers = {"Authorization": f"Bearer {token}"}
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn exposes a flag, not an event
            await asyncio.sleep(0.05)
        async with httpx2.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=30
        ) as client:
            end = started + args.minutes * 60
            while True:
                now = time.monotonic()
                for path in ("/api/connectors/health", "/metrics"):
                    with contextlib.suppress(httpx2.HTTPError):
                        await client.get(path)
                        report.polls += 1
                report.samples.append(sample(process, started))
                last = report.samples[-1]
                print(
                    f"t={last.t:7.1f}s rss={last.rss_mib:7.1f}MiB fds={last.open_fds:4d} "
                    f"conns={last.connections:3d} tasks={last.tasks:4d} "
                    f"calls={traffic.calls} failures={traffic.failures}",
                    flush=True,
                )
                if now >= end:
                    break
                await asyncio.sleep(min(args.sample_seconds, max(0.0, end - time.monotonic())))
    finally:
        report.calls, report.failures = traffic.calls, traffic.failures
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await serving
        env.close()
    fit(report, thresholds)
    return report


def render(report: Report) -> str:
    lines = [
        f"soak: {report.minutes:g} min, warm-up {report.warmup_minutes:g} min, "
        f"{len(report.samples)} samples, {report.calls} calls ({report.failures} failed runs), "
        f"{report.polls} dashboard polls",
        "",
        f"{'series':<12} {'first':>10} {'last':>10} {'slope/min':>10} {'limit':>8}  ok",
    ]
    for f in report.fits:
        lines.append(
            f"{f.name:<12} {f.first:>10.2f} {f.last:>10.2f} {f.slope_per_min:>10.3f} "
            f"{f.threshold:>8.2f}  {'yes' if f.ok else 'NO'}"
        )
    if not report.fits:
        lines.append("(too few samples after warm-up to fit a slope: run longer)")
    lines += ["", "verdict: " + ("no growth beyond the thresholds" if report.ok else "FAILED")]
    return "\n".join(lines)


def parse_thresholds(items: list[str]) -> dict[str, float]:
    chosen = dict(DEFAULT_THRESHOLDS)
    for item in items:
        name, _, value = item.partition("=")
        if name not in chosen:
            raise SystemExit(f"--max-slope: unknown series {name!r}; known: {', '.join(SERIES)}")
        chosen[name] = float(value)
    return chosen


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--warmup-minutes", type=float, default=None,
                        help="default: 2 minutes, or a fifth of a shorter run")  # fmt: skip
    parser.add_argument("--sample-seconds", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between runs")
    parser.add_argument("--incident-every", type=float, default=90.0)
    parser.add_argument("--max-slope", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--out", type=Path, default=Path("test-artifacts/soak.json"))
    args = parser.parse_args(argv)
    if args.warmup_minutes is None:
        args.warmup_minutes = min(2.0, args.minutes / 5)
    thresholds = parse_thresholds(args.max_slope)
    report = asyncio.run(soak(args, thresholds))
    print()
    print(render(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "minutes": report.minutes,
        "warmup_minutes": report.warmup_minutes,
        "calls": report.calls,
        "failed_runs": report.failures,
        "polls": report.polls,
        "thresholds_per_minute": thresholds,
        "fits": [f.__dict__ for f in report.fits],
        "samples": [s.__dict__ for s in report.samples],
        "ok": report.ok,
    }
    args.out.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    print(f"wrote {args.out}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())

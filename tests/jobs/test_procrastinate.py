"""The procrastinate runner: the same job functions on PostgreSQL, and no webhook lost to kill -9.

The server tests start a real PostgreSQL (tests/servers/postgres.py), real worker subprocesses
(``connectors worker --backend procrastinate``) and a loopback HTTP receiver.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import connectors.adapters.webhook.tables
import connectors.jobs.tables  # noqa: F401  (tables on the shared metadata)
from connectors.adapters.webhook.endpoints import EndpointStore
from connectors.adapters.webhook.outbox import WebhookOutbox
from connectors.errors import ConfigurationError
from connectors.jobs.procrastinate_runner import ProcrastinateJobRunner, conninfo_from_url
from connectors.jobs.registry import JobArgs, JobContext, JobFailed, JobRegistry, RetryJob
from connectors.storage.db import Database
from tests.servers.postgres import PostgresServer, postgres_server

__all__ = ["postgres_server"]

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # a test fixture, not a real secret


# --- pure parts -----------------------------------------------------------------------------------


def test_conninfo_drops_the_sqlalchemy_driver_and_keeps_credentials() -> None:
    url = "postgresql+asyncpg://app:pw@127.0.0.1:5544/db1"
    assert conninfo_from_url(url) == "postgresql://app:pw@127.0.0.1:5544/db1"


def test_conninfo_refuses_a_non_postgresql_database() -> None:
    with pytest.raises(ConfigurationError, match="PostgreSQL"):
        conninfo_from_url("sqlite+aiosqlite:///x.db")


def test_every_registered_job_function_becomes_a_procrastinate_task() -> None:
    registry = JobRegistry()

    async def noop(ctx: JobContext, args: JobArgs) -> None:
        return None

    registry.register("a.job", noop)
    registry.register("b.job", noop)
    db = Database("postgresql+asyncpg://u:p@127.0.0.1:1/none")
    runner = ProcrastinateJobRunner(db, registry)
    assert {"a.job", "b.job"} <= set(runner.app.tasks)


# --- against PostgreSQL ---------------------------------------------------------------------------


class _Receiver:
    """A loopback webhook receiver that answers slowly (so a kill lands mid-delivery)."""

    def __init__(self, delay: float) -> None:
        self.ids: Counter[str] = Counter()
        self.in_flight = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                self.rfile.read(length)
                with receiver.lock:
                    receiver.in_flight += 1
                time.sleep(delay)
                with receiver.lock:
                    receiver.ids[self.headers["webhook-id"]] += 1
                    receiver.in_flight -= 1
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> _Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    with _Receiver(delay=0.15) as r:
        yield r


def _worker(url: str, data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CONNECTOR_DATABASE_URL": url,
        "CONNECTOR_DATA_DIR": str(data_dir),
        "CONNECTOR_JOBS_BACKEND": "procrastinate",
        "HOOK_SECRET": SECRET,
    }
    code = "import typer; from connectors.cli.worker import worker; typer.run(worker)"
    args = [
        "--backend=procrastinate",
        "--concurrency=3",
        "--heartbeat=0.3",
        "--stalled-after=1.5",
        "--lease=3",
        "--poll=0.1",
        "--no-scheduler",
    ]
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-c", code, *args],
            env=env,
            cwd=data_dir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _wait(predicate: object, timeout: float, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


async def _prepare(url: str, port: int, count: int) -> list[str]:
    db = Database(url)
    try:
        await db.create_all()
        endpoint = await EndpointStore(db).create(
            "acme",
            f"http://127.0.0.1:{port}/hook",
            ["${env:HOOK_SECRET}"],
            allow_nets=["127.0.0.1/32"],
        )
        outbox = WebhookOutbox(db)
        ids = [await outbox.send("acme", "order.paid", {"n": n}, endpoint.id) for n in range(count)]
        runner = ProcrastinateJobRunner(db, JobRegistry())
        async with runner.app.open_async():
            await runner.ensure_schema()
        return ids
    finally:
        await db.dispose()


async def _statuses(url: str, ids: list[str]) -> Counter[str]:
    db = Database(url)
    try:
        outbox = WebhookOutbox(db)
        return Counter([await outbox.message_status("acme", i) for i in ids])
    finally:
        await db.dispose()


@pytest.mark.server
def test_kill_9_mid_delivery_loses_no_webhook(
    postgres_server: PostgresServer, receiver: _Receiver, tmp_path: Path
) -> None:
    url = postgres_server.create_database()
    ids = asyncio.run(_prepare(url, receiver.port, count=30))
    log = tmp_path / "workers.log"
    first = _worker(url, tmp_path, log)
    try:
        _wait(lambda: len(receiver.ids) >= 5 and receiver.in_flight >= 1, 40, "deliveries")
        first.send_signal(signal.SIGKILL)  # mid-delivery: a request is in flight
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert len(receiver.ids) < len(ids), "the first worker finished everything before the kill"
    second = _worker(url, tmp_path, log)
    try:
        _wait(lambda: set(ids) <= set(receiver.ids), 45, "every webhook")
    except AssertionError:
        print(log.read_text()[-4000:])
        raise
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(timeout=20)
        except subprocess.TimeoutExpired:
            second.kill()
            second.wait()
    assert all(receiver.ids[i] >= 1 for i in ids)
    statuses = asyncio.run(_statuses(url, ids))
    assert statuses["delivered"] == len(ids)


@pytest.mark.server
def test_job_function_endings_map_to_procrastinate_retries(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    url = postgres_server.create_database()
    calls: Counter[str] = Counter()
    registry = JobRegistry()

    async def flaky(ctx: JobContext, args: JobArgs) -> None:
        calls[str(args["key"])] += 1
        if args["key"] == "retry" and ctx.attempt == 1:
            raise RetryJob(0, "again")
        if args["key"] == "fail":
            raise JobFailed("never")

    registry.register("test.flaky", flaky, retry_delays=(0.0,))

    async def main() -> dict[str, int]:
        db = Database(url)
        try:
            await db.create_all()
            from connectors.jobs.queue import JobQueue

            queue = JobQueue(db)
            for key in ("ok", "retry", "fail"):
                await queue.enqueue("test.flaky", {"key": key}, tenant="acme")
            runner = ProcrastinateJobRunner(db, registry, poll=0.05)
            relayed = await runner.run_pending()
            await runner.run_pending()  # the retried job is due again at once
            assert relayed == 3
            return dict(calls)
        finally:
            await db.dispose()

    assert asyncio.run(main()) == {"ok": 1, "retry": 2, "fail": 1}

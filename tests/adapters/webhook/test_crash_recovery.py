"""kill -9 of a worker mid-delivery: every webhook id still reaches the receiver at least once."""

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from connectors.adapters.webhook import EndpointStore, WebhookOutbox
from connectors.adapters.webhook.verify import verify_signature
from connectors.clock import system_clock
from connectors.secrets import Secret
from tests.adapters.webhook._support import WHSEC
from tests.jobs._support import make_db

WORKER = Path(__file__).with_name("_worker.py")
MESSAGES = 16


class SlowReceiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        length = int(self.headers["Content-Length"])
        body = self.rfile.read(length)
        server = self.server
        if len(body) < length:
            # The sender was killed while writing: a truncated request, never a delivery (and
            # no signature can match it). It gets no answer: the socket is gone.
            with server.lock:
                server.truncated += 1
            return
        with server.lock:
            server.started += 1
        time.sleep(0.3)  # slow enough for the kill to land mid-delivery
        try:
            verify_signature(
                "standard", dict(self.headers), body, [Secret(WHSEC)], clock=system_clock
            )
            valid = True
        except Exception:
            valid = False
        with server.lock:
            server.received[self.headers["webhook-id"]] += 1
            server.valid &= valid
            server.finished += 1
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), SlowReceiver)
    srv.daemon_threads = True
    srv.lock = threading.Lock()
    srv.received = Counter()
    srv.started = srv.finished = srv.truncated = 0
    srv.valid = True
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join()


def start_worker(db_path: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, str(WORKER), str(db_path), WHSEC, "4", "2.0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert proc.stdout.readline().strip() == b"ready"
    return proc


def wait_for(predicate, timeout: float, interval: float = 0.02) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


@pytest.mark.slow
def test_kill_9_mid_delivery_then_a_second_worker_delivers_every_id(tmp_path, receiver):
    db_path = tmp_path / "webhooks.db"
    port = receiver.server_address[1]

    async def setup() -> list[str]:
        db = await make_db(tmp_path, "webhooks.db")
        endpoints = EndpointStore(db)
        ep = await endpoints.create(
            "acme",
            f"http://127.0.0.1:{port}/hook",
            ["${secret:hook}"],
            allow_nets=["127.0.0.1/32"],
        )
        outbox = WebhookOutbox(db)
        ids = [await outbox.send("acme", "order.created", {"n": n}, ep.id) for n in range(MESSAGES)]
        await db.dispose()
        return ids

    async def statuses() -> Counter:
        from connectors.storage.db import Database

        db = Database(f"sqlite+aiosqlite:///{db_path}")
        outbox = WebhookOutbox(db)
        result = Counter([await outbox.message_status("acme", i) for i in ids])
        await db.dispose()
        return result

    ids = asyncio.run(setup())
    first = start_worker(db_path)
    try:
        # kill while deliveries are in flight (started but not answered)
        assert wait_for(lambda: receiver.started - receiver.finished >= 2, 20)
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        in_flight_at_kill = receiver.started - receiver.finished
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
        first.stdout.close()
        first.stderr.close()
    assert in_flight_at_kill >= 1
    delivered_before = sum(1 for i in ids if receiver.received[i])
    assert delivered_before < MESSAGES

    second = start_worker(db_path)
    try:
        assert wait_for(lambda: all(receiver.received[i] >= 1 for i in ids), 60)
        assert wait_for(lambda: asyncio.run(statuses())["delivered"] == MESSAGES, 20, 0.3)
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(15)
        except subprocess.TimeoutExpired:
            second.kill()
            second.wait()
        second.stdout.close()
        second.stderr.close()
    assert all(receiver.received[i] >= 1 for i in ids)
    assert receiver.valid
    assert set(receiver.received) == set(ids)

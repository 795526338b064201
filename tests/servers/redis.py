"""A private ``redis-server`` for tests: loopback only, no persistence, restartable on its port.

::

    with RedisServer.start() as redis:
        backend = RedisStateBackend(redis.url)
        ...
        redis.stop()      # the backend sees an outage
        redis.restart()   # same port, empty data set

It needs the Debian package's ``/usr/bin/redis-server``. Everything lives in a temporary directory
(working dir, log); ``--save ''`` and ``--appendonly no`` keep it in memory only. The
``redis_server`` fixture shares one server per test session; tests isolate themselves by key
prefix (or ``FLUSHALL``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pytest

__all__ = ["REDIS_BINARY", "RedisServer", "free_port", "redis_available", "redis_server"]

REDIS_BINARY = "/usr/bin/redis-server"


def redis_available() -> bool:
    """Whether the ``redis-server`` binary is installed."""
    return Path(REDIS_BINARY).exists()


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (bind to 0, read it, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _ping(port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One ``redis-server`` process on ``127.0.0.1:port`` with its own temporary directory."""

    def __init__(self, port: int, directory: Path) -> None:
        self.port = port
        self.directory = directory
        self._process: subprocess.Popen[bytes] | None = None

    @classmethod
    def start(cls, port: int | None = None) -> RedisServer:
        """Start a server (on a free port unless given) and wait until it answers PING."""
        server = cls(port or free_port(), Path(tempfile.mkdtemp(prefix="redis-")))
        try:
            server._spawn()
        except BaseException:
            shutil.rmtree(server.directory, ignore_errors=True)
            raise
        return server

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _spawn(self) -> None:
        args = [
            REDIS_BINARY,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
            "--logfile",
            str(self.directory / "redis.log"),
        ]
        self._process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        give_up = time.monotonic() + 10
        while not _ping(self.port):
            if self._process.poll() is not None:
                log = (self.directory / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited with {self._process.returncode}: {log}")
            if time.monotonic() > give_up:
                self.stop()
                raise RuntimeError(f"redis-server did not answer on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL); the port becomes free."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def restart(self) -> None:
        """Start again on the same port (an empty data set: nothing is persisted)."""
        self.stop()
        give_up = time.monotonic() + 10
        while True:
            try:
                self._spawn()
                return
            except RuntimeError:
                if time.monotonic() > give_up:
                    raise
                time.sleep(0.1)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<RedisServer port={self.port} running={self.running} pid={os.getpid()}>"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A redis-server for the session. A missing binary fails the tests: `make test` installs
    it (scripts/install-system.sh), and a skip would hide a broken install step."""
    if not redis_available():
        pytest.fail("redis-server is not installed: run `make test` (it installs redis-server)")
    with RedisServer.start() as server:
        yield server

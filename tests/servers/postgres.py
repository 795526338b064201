"""A private PostgreSQL 15 for tests: a temporary cluster on a free loopback port.

::

    with PostgresServer.start() as pg:
        url = pg.create_database()          # a fresh, empty database owned by the app user
        db = Database(url)                  # postgresql+asyncpg://connectors:...@127.0.0.1:port/...

What it sets up, and why:

- ``initdb`` into a temporary directory owned by the ``postgres`` user (PostgreSQL refuses to
  run as root, so as root every server command runs through ``runuser -u postgres``);
- TCP on ``127.0.0.1`` only, password (SCRAM) authentication over TCP, the unix socket in the
  same temporary directory (trust, used for administration through ``psql``);
- durability off (``fsync``, ``synchronous_commit``, ``full_page_writes``): tests need speed,
  not crash safety;
- an application role ``connectors`` (not a superuser) that owns every database it creates.

It needs the Debian ``postgresql`` 15 binaries under ``/usr/lib/postgresql/15/bin``.
"""

from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType

import pytest

from tests.servers.redis import free_port

__all__ = ["PG_BIN", "PostgresServer", "postgres_available", "postgres_server"]

PG_BIN = Path("/usr/lib/postgresql/15/bin")
APP_USER = "connectors"
APP_PASSWORD = "connectors-test-password"
_names = itertools.count(1)


def postgres_available() -> bool:
    """Whether the PostgreSQL 15 binaries are installed and a non-root user exists to run them."""
    if not (PG_BIN / "initdb").exists():
        return False
    if os.geteuid() != 0:
        return True
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    return True


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory, listening on ``127.0.0.1:port``."""

    def __init__(self, port: int, directory: Path) -> None:
        self.port = port
        self.directory = directory
        self.data_dir = directory / "data"
        self.socket_dir = directory / "sock"
        self._running = False

    @classmethod
    def start(cls, port: int | None = None) -> PostgresServer:
        """Create the cluster, start it, and create the application role."""
        directory = Path(tempfile.mkdtemp(prefix="pg-"))
        server = cls(port or free_port(), directory)
        try:
            server._init()
            server._start()
            server.psql(f"CREATE ROLE {APP_USER} LOGIN CREATEDB PASSWORD '{APP_PASSWORD}'")
        except BaseException:
            server.close()
            raise
        return server

    # --- running commands -------------------------------------------------------------------------

    def _as_postgres(self, args: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["/usr/sbin/runuser", "-u", "postgres", "--", *args]
        return args

    def _run(self, args: list[str], *, timeout: float = 60) -> str:
        done = subprocess.run(
            self._as_postgres(args),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.directory,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed: {done.stderr.strip()[-2000:]}")
        return done.stdout

    def _init(self) -> None:
        self.socket_dir.mkdir()
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            for path in (self.directory, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._run(
            [
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--no-sync",
                "--no-instructions",
            ]
        )

    def _start(self) -> None:
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.socket_dir}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=200",
                "-c shared_buffers=32MB",
            ]
        )
        self._run(
            [
                str(PG_BIN / "pg_ctl"),
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.directory / "postgres.log"),
                "-o",
                options,
            ]
        )
        self._running = True

    def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        self._run(
            [str(PG_BIN / "pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.data_dir)],
            timeout=60,
        )

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def psql(self, sql: str, *, database: str = "postgres") -> str:
        """Run ``sql`` as the superuser over the unix socket; return psql's output."""
        return self._run(
            [
                str(PG_BIN / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                str(self.socket_dir),
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-c",
                sql,
            ]
        )

    # --- databases --------------------------------------------------------------------------------

    def url(self, database: str, *, driver: str = "asyncpg") -> str:
        """The application role's SQLAlchemy URL of ``database``."""
        return f"postgresql+{driver}://{APP_USER}:{APP_PASSWORD}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """Create an empty database owned by the application role; return its URL."""
        name = name or f"test_{os.getpid()}_{next(_names)}_{time.monotonic_ns() % 1_000_000}"
        self.psql(f'CREATE DATABASE "{name}" OWNER {APP_USER} TEMPLATE template0')
        return self.url(name)

    def __enter__(self) -> PostgresServer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<PostgresServer port={self.port} running={self._running}>"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster for the session. A missing server fails the tests: `make test`
    installs it (scripts/install-system.sh), and a skip would hide a broken install step."""
    if not postgres_available():
        pytest.fail("PostgreSQL 15 is not installed: run `make test` (it installs postgresql)")
    with PostgresServer.start() as server:
        yield server

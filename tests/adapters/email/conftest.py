"""Real servers for the email tests, started once per session.

- ``dovecot``: a private Dovecot (IMAP 127.0.0.1 and 127.0.0.2, IMAPS, LMTP, XOAUTH2);
- ``smtp_plain`` / ``smtp_starttls`` / ``smtp_tls``: aiosmtpd servers that relay every accepted
  message into that Dovecot over LMTP (so a send can be read back over IMAP).

Tests that use them are marked ``server``; without Dovecot (or root) they are skipped.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.resilience import set_testing
from tests.adapters.email import support
from tests.adapters.email.smtp_server import SmtpTestServer, running_smtp_server
from tests.servers.dovecot import DovecotServer, dovecot_available


@pytest.fixture(scope="session", autouse=True)
def _hub_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Test Hubs keep their SQLite files (audit log) in a temporary directory, not the cwd."""
    support.DATA_DIR[:] = [tmp_path_factory.mktemp("hub-data")]
    yield
    support.DATA_DIR.clear()


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    # A missing Dovecot fails the tests: `make test` installs it, and the issue asks for these
    # tests to run against the real server, so a skip would hide a broken install step.
    if not dovecot_available():
        pytest.fail(
            "Dovecot is not installed (or the suite is not running as root): run `make test`, "
            "which installs dovecot-imapd and dovecot-lmtpd"
        )
    with DovecotServer.start() as server:
        yield server


@pytest.fixture(scope="session")
def smtp_plain(dovecot: DovecotServer) -> Iterator[SmtpTestServer]:
    with running_smtp_server(security="none", relay=dovecot) as server:
        yield server


@pytest.fixture(scope="session")
def smtp_starttls(dovecot: DovecotServer) -> Iterator[SmtpTestServer]:
    with running_smtp_server(security="starttls", tls=dovecot.tls, relay=dovecot) as server:
        yield server


@pytest.fixture(scope="session")
def smtp_tls(dovecot: DovecotServer) -> Iterator[SmtpTestServer]:
    with running_smtp_server(security="tls", tls=dovecot.tls, relay=dovecot) as server:
        yield server


@pytest.fixture
def smtp(smtp_plain: SmtpTestServer) -> Iterator[SmtpTestServer]:
    """The plaintext relay with fresh counters."""
    smtp_plain.reset_counters()
    yield smtp_plain
    smtp_plain.reset_counters()


@pytest.fixture
def no_waits() -> Iterator[None]:
    set_testing(True)
    try:
        yield
    finally:
        set_testing(False)

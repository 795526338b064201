"""Helpers shared by the email tests: a Hub with the email adapter and settings builders."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from connectors.adapters.email import EmailConnector
from connectors.base import OperationOutcome
from connectors.config.definition import ResilienceOverrides
from connectors.config.settings import Settings
from connectors.hub import Hub
from connectors.registry import AdapterRegistry
from connectors.secrets import Secret
from tests.adapters.email.smtp_server import SmtpTestServer
from tests.servers.dovecot import DovecotServer


class RecordingAudit:
    def __init__(self) -> None:
        self.events: list[OperationOutcome] = []

    def record_operation(self, outcome: OperationOutcome) -> None:
        self.events.append(outcome)

    async def flush(self) -> None:
        return None


#: Where test Hubs keep their SQLite data (audit log...); set by the conftest per session.
DATA_DIR: list[Path] = []


def make_hub(**kwargs: object) -> Hub:
    """A Hub with only the email adapter, its data in the session's temporary directory."""
    registry = AdapterRegistry(discover=False, builtins={})
    registry.register(EmailConnector)
    data_dir = DATA_DIR[0] if DATA_DIR else Path(tempfile.mkdtemp(prefix="email-hub-"))
    return Hub(Settings.load({}, data_dir=data_dir), registry=registry, **kwargs)  # type: ignore[arg-type]


@dataclass
class Mailbox:
    """A fresh account, known to both Dovecot and the SMTP server."""

    user: str
    password: str


def new_mailbox(dovecot: DovecotServer, *smtp: SmtpTestServer) -> Mailbox:
    user, password = dovecot.claim_user()
    for server in smtp:
        server.add_user(user, password)
    return Mailbox(user, password)


def settings_for(
    box: Mailbox,
    *,
    dovecot: DovecotServer | None = None,
    smtp: SmtpTestServer | None = None,
    **overrides: object,
) -> dict[str, object]:
    settings: dict[str, object] = {
        "username": box.user,
        "password": Secret(box.password),
        "default_from": box.user,
        "timeout": 20,
    }
    if smtp is not None:
        settings.update(smtp_host=smtp.host, smtp_port=smtp.port, smtp_security=smtp.security)
        if smtp.tls is not None:
            settings["ca_file"] = str(smtp.tls.ca_file)
    if dovecot is not None:
        settings.update(imap_host="127.0.0.1", imap_port=dovecot.imap_port, imap_security="none")
        settings.setdefault("ca_file", str(dovecot.tls.ca_file))
    settings.update(overrides)
    return settings


@asynccontextmanager
async def open_email(
    settings: Mapping[str, object],
    *,
    hub: Hub | None = None,
    audit: RecordingAudit | None = None,
    resilience: ResilienceOverrides | None = None,
    tenant: str = "acme",
    **runtime: object,
) -> AsyncIterator[EmailConnector]:
    owned = hub is None
    hub = hub or make_hub()
    await hub.start()  # creates the schema (audit log) on first use; idempotent
    conn = hub.connector("email", tenant_id=tenant, settings=settings, resilience=resilience)
    if audit is not None:
        conn.runtime.audit = audit
    for key, value in runtime.items():
        setattr(conn.runtime, key, value)
    assert isinstance(conn, EmailConnector)
    try:
        async with conn:
            yield conn
    finally:
        if owned:
            await hub.aclose()

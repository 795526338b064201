"""Helpers for the audit tests: events, in-memory and failing sinks, a temporary database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import connectors.storage.access
import connectors.storage.audit  # noqa: F401  (registers the tables on the metadata)
from connectors.audit.events import AuditEvent
from connectors.clock import Clock, FakeClock
from connectors.storage.db import Database


def make_event(
    clock: Clock | None = None, *, tenant: str = "acme", n: int = 0, **fields: object
) -> AuditEvent:
    values: dict[str, object] = {
        "tenant": tenant,
        "actor": "alice@acme.io",
        "operation": "create",
        "outcome": "success",
        "connector": "salesforce",
        "target": f"Lead/{n}",
        "details": {"n": n},
    }
    values.update(fields)
    return AuditEvent.new(clock=clock or FakeClock(), **values)  # type: ignore[arg-type]


class MemorySink:
    """Keeps every batch it is given."""

    def __init__(self) -> None:
        self.batches: list[list[AuditEvent]] = []

    @property
    def events(self) -> list[AuditEvent]:
        return [e for b in self.batches for e in b]

    async def write_batch(self, events: Sequence[AuditEvent]) -> None:
        self.batches.append(list(events))


class FlakySink:
    """Fails ``failures`` calls (optionally only after ``after`` successful ones), then works."""

    def __init__(self, inner: object, *, failures: int, after: int = 0) -> None:
        self.inner = inner
        self.failures = failures
        self.after = after
        self.calls = 0
        self.failed = 0

    async def write_batch(self, events: Sequence[AuditEvent]) -> None:
        self.calls += 1
        if self.calls > self.after and self.failed < self.failures:
            self.failed += 1
            raise ConnectionError("sink is down")
        await self.inner.write_batch(events)  # type: ignore[attr-defined]


class DeadSink:
    """Always fails."""

    def __init__(self) -> None:
        self.calls = 0

    async def write_batch(self, events: Sequence[AuditEvent]) -> None:
        self.calls += 1
        raise ConnectionError("sink is down")


def db_url(directory: Path) -> str:
    return f"sqlite+aiosqlite:///{directory / 'audit.db'}"


@asynccontextmanager
async def database(directory: Path) -> AsyncIterator[Database]:
    db = Database(db_url(directory))
    await db.create_all()
    try:
        yield db
    finally:
        await db.dispose()

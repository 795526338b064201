"""The delivery's hot database work, in batches: loading messages and recording successes.

Concurrent deliveries share round trips through :class:`~connectors.adapters.webhook.batcher.
Coalescer`\\ s:

- :meth:`DeliveryJournal.load`: one ``SELECT`` (messages joined to their endpoints) for every
  message the running deliveries asked for meanwhile; each endpoint row is parsed once per batch;
- :meth:`DeliveryJournal.record_success`: one transaction per batch of successful attempts — the
  attempts-log rows (``INSERT`` executemany), the messages' ``delivered`` state (``UPDATE``
  executemany) and the end of their endpoints' failure runs. A caller resumes only after that
  transaction committed, so a delivery is reported done only once its state is durable; a crash
  before the commit leaves the message pending and its job leased, and it is delivered again
  (at least once, same ``webhook-id``).

Failures are rarer and touch more state (the schedule, dead letters, disabling); they keep their
own transaction in :mod:`~connectors.adapters.webhook.delivery`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import RowMapping, Table, bindparam, insert, or_, select, update

from connectors.adapters.webhook.batcher import Coalescer
from connectors.adapters.webhook.endpoints import Endpoint
from connectors.adapters.webhook.schedule import RetrySchedule
from connectors.adapters.webhook.signing import HmacScheme, SigningScheme
from connectors.adapters.webhook.tables import (
    WebhookAttemptRow,
    WebhookEndpointRow,
    WebhookMessageRow,
)
from connectors.storage.db import Database

__all__ = ["DeliveryJournal", "LoadedMessage", "Success"]

_messages = cast("Table", WebhookMessageRow.__table__)
_endpoints = cast("Table", WebhookEndpointRow.__table__)
_attempts = cast("Table", WebhookAttemptRow.__table__)


@dataclass(frozen=True, slots=True)
class LoadedMessage:
    """A message as a delivery attempt needs it, with its endpoint (``None``: deleted)."""

    id: str
    status: str
    attempts: int
    payload: bytes
    schedule: RetrySchedule
    endpoint_id: str
    endpoint: Endpoint | None


@dataclass(frozen=True, slots=True)
class Success:
    """A successful attempt to record."""

    message_id: str
    tenant: str
    endpoint_id: str
    attempt: int
    at: float
    status: int | None
    latency_ms: float | None
    excerpt: str | None


def _endpoint(values: RowMapping) -> Endpoint:
    custom = values["custom"]
    return Endpoint(
        id=values["id"],
        tenant=values["tenant"],
        url=values["url"],
        secret_refs=tuple(json.loads(values["secret_refs"])),
        scheme=SigningScheme(values["scheme"]),
        custom=HmacScheme(**json.loads(custom)) if custom else None,
        allow_nets=tuple(json.loads(values["allow_nets"])),
        allow_hosts=tuple(json.loads(values["allow_hosts"])),
        enabled=bool(values["enabled"]),
        disabled_reason=values["disabled_reason"],
        failing_since=values["failing_since"],
        consecutive_dead=values["consecutive_dead"],
        created_at=values["created_at"],
    )


_LOAD = select(
    _messages.c.id.label("m_id"),
    _messages.c.status.label("m_status"),
    _messages.c.attempts.label("m_attempts"),
    _messages.c.payload.label("m_payload"),
    _messages.c.schedule.label("m_schedule"),
    _messages.c.endpoint_id.label("m_endpoint_id"),
    *_endpoints.c,
).select_from(_messages.outerjoin(_endpoints, _endpoints.c.id == _messages.c.endpoint_id))
_LOAD_BY_IDS = _LOAD.where(_messages.c.id.in_(bindparam("b_ids", expanding=True)))

_ATTEMPT = insert(_attempts)

#: A success ends the endpoint's failure run (no-op for a healthy endpoint).
_RECOVERED = (
    update(_endpoints)
    .where(
        _endpoints.c.id.in_(bindparam("b_ids", expanding=True)),
        or_(_endpoints.c.failing_since.is_not(None), _endpoints.c.consecutive_dead != 0),
    )
    .values(failing_since=None, consecutive_dead=0)
)

_DELIVERED = (
    update(_messages)
    .where(_messages.c.id == bindparam("b_id"))
    .values(
        status="delivered",
        attempts=bindparam("b_attempt"),
        last_status=bindparam("b_status"),
        last_error=None,
        updated_at=bindparam("b_at"),
        delivered_at=bindparam("b_at"),
    )
)


class DeliveryJournal:
    """Batched reads and writes of the delivery hot path (see the module docstring)."""

    def __init__(self, db: Database, *, max_batch: int = 256) -> None:
        self.db = db
        self.loads: Coalescer[str, LoadedMessage | None] = Coalescer(
            self._load_batch, max_batch=max_batch
        )
        self.successes: Coalescer[Success, None] = Coalescer(
            self._write_successes, max_batch=max_batch
        )
        self._schedules: dict[str, RetrySchedule] = {}

    async def load(self, message_id: str) -> LoadedMessage | None:
        """The message and its endpoint, or ``None`` for an unknown message."""
        return await self.loads.submit(message_id)

    async def record_success(self, success: Success) -> None:
        """Record the attempt and the delivered state; returns once they are committed."""
        await self.successes.submit(success)

    async def aclose(self) -> None:
        """Let batches in flight finish."""
        await self.loads.aclose()
        await self.successes.aclose()

    def _schedule(self, text: str) -> RetrySchedule:
        found = self._schedules.get(text)
        if found is None:
            if len(self._schedules) > 1000:
                self._schedules.clear()
            found = self._schedules[text] = RetrySchedule.of(json.loads(text))
        return found

    async def _load_batch(self, ids: list[str]) -> Sequence[LoadedMessage | None]:
        async with self.db.engine.connect() as conn:
            rows = (await conn.execute(_LOAD_BY_IDS, {"b_ids": list(set(ids))})).mappings()
            found: dict[str, LoadedMessage] = {}
            endpoints: dict[str, Endpoint] = {}
            for row in rows:
                endpoint: Endpoint | None = None
                if row["id"] is not None:
                    endpoint = endpoints.get(row["id"])
                    if endpoint is None:
                        endpoint = endpoints[row["id"]] = _endpoint(row)
                found[row["m_id"]] = LoadedMessage(
                    id=row["m_id"],
                    status=row["m_status"],
                    attempts=row["m_attempts"],
                    payload=row["m_payload"],
                    schedule=self._schedule(row["m_schedule"]),
                    endpoint_id=row["m_endpoint_id"],
                    endpoint=endpoint,
                )
        return [found.get(message_id) for message_id in ids]

    async def _write_successes(self, items: list[Success]) -> Sequence[None]:
        attempts = [
            {
                "message_id": s.message_id,
                "tenant": s.tenant,
                "endpoint_id": s.endpoint_id,
                "attempt": s.attempt,
                "at": s.at,
                "outcome": "success",
                "status": s.status,
                "latency_ms": s.latency_ms,
                "response_excerpt": s.excerpt,
                "error": None,
            }
            for s in items
        ]
        delivered = [
            {"b_id": s.message_id, "b_attempt": s.attempt, "b_status": s.status, "b_at": s.at}
            for s in items
        ]
        recovered = sorted({s.endpoint_id for s in items})
        async with self.db.engine.begin() as conn:
            await conn.execute(_ATTEMPT, attempts)
            await conn.execute(_DELIVERED, delivered)
            await conn.execute(_RECOVERED, {"b_ids": recovered})
        return [None] * len(items)

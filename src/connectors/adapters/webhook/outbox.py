"""The durable side of sending: the outbox, replays, and the attempts and dead-letter queries.

:meth:`WebhookOutbox.send` writes the message and its delivery job in one transaction, the
caller's when a session is given: the webhook commits or rolls back with the caller's own data.
The message id is the ``webhook-id`` of every attempt, replays included.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.adapters.webhook.delivery import DELIVER_JOB
from connectors.adapters.webhook.schedule import RetrySchedule
from connectors.adapters.webhook.signing import new_message_id
from connectors.adapters.webhook.tables import (
    WebhookAttemptRow,
    WebhookDeadLetterRow,
    WebhookEndpointRow,
    WebhookMessageRow,
)
from connectors.clock import Clock, system_clock
from connectors.errors import Conflict, InvalidRequest, NotFound, field_errors
from connectors.jobs.queue import JobQueue
from connectors.storage.db import Database

__all__ = ["DEFAULT_MAX_PAYLOAD", "AttemptInfo", "DeadLetterInfo", "OutboxStats", "WebhookOutbox"]

#: The default payload size limit (bytes of the serialised body).
DEFAULT_MAX_PAYLOAD = 256 * 1024


@dataclass(frozen=True, slots=True)
class AttemptInfo:
    """One row of the attempts log."""

    message_id: str
    endpoint_id: str
    attempt: int
    at: float
    outcome: str
    status: int | None
    latency_ms: float | None
    response_excerpt: str | None
    error: str | None

    def to_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(frozen=True, slots=True)
class DeadLetterInfo:
    """A message in the dead-letter list."""

    message_id: str
    endpoint_id: str
    event_type: str
    at: float
    reason: str
    attempts: int

    def to_dict(self) -> dict[str, object]:
        return {k: getattr(self, k) for k in self.__slots__}


@dataclass(frozen=True, slots=True)
class OutboxStats:
    """Health figures for one tenant (or all, for ``tenant=None``)."""

    pending: int
    oldest_pending_age: float | None
    dead_letters: int
    disabled_endpoints: int


def encode_payload(payload: object) -> bytes:
    """The bytes sent: ``bytes`` as given, anything else as compact JSON."""
    if isinstance(payload, bytes | bytearray):
        return bytes(payload)
    try:
        return json.dumps(
            payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(
            f"the webhook payload is not JSON-serialisable: {exc}",
            fields=field_errors({"payload": "must be JSON (dict, list, str, number, bool, null)"}),
        ) from exc


class WebhookOutbox:
    """Enqueue messages, replay dead letters, and query attempts, for any tenant."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock = system_clock,
        schedule: RetrySchedule | None = None,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
    ) -> None:
        self.db = db
        self.clock = clock
        self.schedule = schedule or RetrySchedule()
        self.max_payload = max_payload
        self.jobs = JobQueue(db, clock=clock)

    async def send(
        self,
        tenant: str,
        event_type: str,
        payload: object,
        endpoint_id: str,
        *,
        session: AsyncSession | None = None,
        message_id: str | None = None,
    ) -> str:
        """Queue ``payload`` for ``endpoint_id``; returns the message id (the ``webhook-id``).

        Idempotent by ``message_id``: sending the same id again returns it without a second
        message. Raises :class:`~connectors.errors.InvalidRequest` for a payload over the size
        limit, :class:`~connectors.errors.NotFound` for an unknown endpoint and
        :class:`~connectors.errors.Conflict` for a disabled one.
        """
        if not event_type or len(event_type) > 200:
            raise InvalidRequest("event_type must be 1-200 characters")
        body = encode_payload(payload)
        if len(body) > self.max_payload:
            raise InvalidRequest(
                f"the webhook payload is {len(body)} bytes; the limit is {self.max_payload}",
                fields=field_errors({"payload": f"at most {self.max_payload} bytes"}),
                hint="send a thin payload (ids and a link) and let the receiver fetch the rest",
            )
        if message_id is not None and (not message_id or "." in message_id or len(message_id) > 64):
            raise InvalidRequest("message_id must be 1-64 characters without '.'")
        if session is not None:
            return await self._send(session, tenant, event_type, body, endpoint_id, message_id)
        async with self.db.session() as own:
            return await self._send(own, tenant, event_type, body, endpoint_id, message_id)

    async def _send(
        self,
        session: AsyncSession,
        tenant: str,
        event_type: str,
        body: bytes,
        endpoint_id: str,
        message_id: str | None,
    ) -> str:
        endpoint = await session.get(WebhookEndpointRow, endpoint_id)
        if endpoint is None or endpoint.tenant != tenant:
            raise NotFound(f"no webhook endpoint {endpoint_id!r}", tenant=tenant)
        if not endpoint.enabled:
            raise Conflict(
                f"webhook endpoint {endpoint_id!r} is disabled: {endpoint.disabled_reason}",
                tenant=tenant,
                hint="fix the receiver, then enable the endpoint and replay its dead letters",
            )
        now = self.clock.time()
        if message_id is not None:
            existing = await session.get(WebhookMessageRow, message_id)
            if existing is not None:
                if existing.tenant != tenant or existing.endpoint_id != endpoint_id:
                    raise Conflict(f"message id {message_id!r} is already used", tenant=tenant)
                return message_id
        msg_id = message_id or new_message_id(now)
        session.add(
            WebhookMessageRow(
                id=msg_id,
                tenant=tenant,
                endpoint_id=endpoint_id,
                event_type=event_type,
                payload=body,
                status="pending",
                attempts=0,
                schedule=json.dumps(list(self.schedule.delays)),
                replays=0,
                created_at=now,
                updated_at=now,
            )
        )
        await session.flush()
        await self.jobs.enqueue(
            DELIVER_JOB,
            {"message_id": msg_id},
            session=session,
            tenant=tenant,
            dedupe_key=f"webhook:{msg_id}:0",
        )
        return msg_id

    async def replay(
        self,
        tenant: str | None,
        *,
        endpoint_id: str | None = None,
        message_id: str | None = None,
    ) -> list[str]:
        """Queue dead letters again (same ``webhook-id``, a fresh schedule); returns their ids.

        ``tenant=None`` replays across tenants (operators, the CLI).
        """
        stmt = select(WebhookDeadLetterRow).where(WebhookDeadLetterRow.replayed_at.is_(None))
        if tenant is not None:
            stmt = stmt.where(WebhookDeadLetterRow.tenant == tenant)
        if endpoint_id is not None:
            stmt = stmt.where(WebhookDeadLetterRow.endpoint_id == endpoint_id)
        if message_id is not None:
            stmt = stmt.where(WebhookDeadLetterRow.message_id == message_id)
        replayed: list[str] = []
        async with self.db.session() as session:
            letters = list((await session.execute(stmt)).scalars())
            if message_id is not None and not letters:
                raise NotFound(f"{message_id!r} is not in the dead-letter list", tenant=tenant)
            now = self.clock.time()
            for letter in letters:
                message = await session.get(WebhookMessageRow, letter.message_id)
                endpoint = await session.get(WebhookEndpointRow, letter.endpoint_id)
                if message is None or endpoint is None or not endpoint.enabled:
                    continue
                message.status = "pending"
                message.attempts = 0
                message.replays += 1
                message.updated_at = now
                letter.replayed_at = now
                await self.jobs.enqueue(
                    DELIVER_JOB,
                    {"message_id": message.id},
                    session=session,
                    tenant=message.tenant,
                    dedupe_key=f"webhook:{message.id}:{message.replays}",
                )
                replayed.append(message.id)
        return replayed

    async def dead_letters(
        self, tenant: str | None, *, endpoint_id: str | None = None, limit: int = 100
    ) -> list[DeadLetterInfo]:
        """Dead letters not yet replayed, newest first."""
        stmt = (
            select(WebhookDeadLetterRow, WebhookMessageRow)
            .join(WebhookMessageRow, WebhookMessageRow.id == WebhookDeadLetterRow.message_id)
            .where(WebhookDeadLetterRow.replayed_at.is_(None))
            .order_by(WebhookDeadLetterRow.at.desc())
            .limit(limit)
        )
        if tenant is not None:
            stmt = stmt.where(WebhookDeadLetterRow.tenant == tenant)
        if endpoint_id is not None:
            stmt = stmt.where(WebhookDeadLetterRow.endpoint_id == endpoint_id)
        async with self.db.session() as session:
            rows = (await session.execute(stmt)).all()
        return [
            DeadLetterInfo(d.message_id, d.endpoint_id, m.event_type, d.at, d.reason, m.attempts)
            for d, m in rows
        ]

    async def attempts(
        self,
        tenant: str | None,
        *,
        message_id: str | None = None,
        endpoint_id: str | None = None,
        limit: int = 100,
    ) -> list[AttemptInfo]:
        """The attempts log, oldest first, per message and/or endpoint."""
        stmt = select(WebhookAttemptRow).order_by(WebhookAttemptRow.id).limit(limit)
        if tenant is not None:
            stmt = stmt.where(WebhookAttemptRow.tenant == tenant)
        if message_id is not None:
            stmt = stmt.where(WebhookAttemptRow.message_id == message_id)
        if endpoint_id is not None:
            stmt = stmt.where(WebhookAttemptRow.endpoint_id == endpoint_id)
        async with self.db.session() as session:
            rows = (await session.execute(stmt)).scalars()
            return [
                AttemptInfo(
                    r.message_id,
                    r.endpoint_id,
                    r.attempt,
                    r.at,
                    r.outcome,
                    r.status,
                    r.latency_ms,
                    r.response_excerpt,
                    r.error,
                )
                for r in rows
            ]

    async def message_status(self, tenant: str, message_id: str) -> str:
        """``pending``, ``delivered`` or ``dead``."""
        async with self.db.session() as session:
            row = await session.get(WebhookMessageRow, message_id)
        if row is None or row.tenant != tenant:
            raise NotFound(f"no webhook message {message_id!r}", tenant=tenant)
        return row.status

    async def stats(self, tenant: str | None) -> OutboxStats:
        """Outbox lag, dead letters and disabled endpoints, for health checks."""
        pending = select(func.count(), func.min(WebhookMessageRow.created_at)).where(
            WebhookMessageRow.status == "pending"
        )
        dead = (
            select(func.count())
            .select_from(WebhookDeadLetterRow)
            .where(WebhookDeadLetterRow.replayed_at.is_(None))
        )
        disabled = (
            select(func.count())
            .select_from(WebhookEndpointRow)
            .where(WebhookEndpointRow.enabled.is_(False))
        )
        if tenant is not None:
            pending = pending.where(WebhookMessageRow.tenant == tenant)
            dead = dead.where(WebhookDeadLetterRow.tenant == tenant)
            disabled = disabled.where(WebhookEndpointRow.tenant == tenant)
        async with self.db.session() as session:
            count, oldest = (await session.execute(pending)).one()
            dead_count = (await session.execute(dead)).scalar_one()
            disabled_count = (await session.execute(disabled)).scalar_one()
        age = None if oldest is None else max(0.0, self.clock.time() - float(oldest))
        return OutboxStats(int(count), age, int(dead_count), int(disabled_count))

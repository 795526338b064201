"""Webhook tables: endpoints, the outbox of messages, the attempts log and the dead letters.

Secrets are never stored here: an endpoint holds *references* (``${secret:...}``,
``${env:...}``) that the delivery resolves for the endpoint's tenant at send time. Payloads are
stored as the exact bytes that are signed and sent. Times are Unix seconds (floats).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Float, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from connectors.storage.db import Base

__all__ = ["WebhookAttemptRow", "WebhookDeadLetterRow", "WebhookEndpointRow", "WebhookMessageRow"]


class WebhookEndpointRow(Base):
    """A tenant's delivery target."""

    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(200), index=True)
    url: Mapped[str] = mapped_column(Text)
    #: JSON list of secret references, newest first.
    secret_refs: Mapped[str] = mapped_column(Text)
    scheme: Mapped[str] = mapped_column(String(16))
    #: JSON of the custom HMAC settings (scheme ``custom``), else null.
    custom: Mapped[str | None] = mapped_column(Text)
    #: JSON lists of allowed CIDRs and host names (the SSRF allowlist).
    allow_nets: Mapped[str] = mapped_column(Text, default="[]")
    allow_hosts: Mapped[str] = mapped_column(Text, default="[]")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    #: When the current run of failures began (``None`` after a success).
    failing_since: Mapped[float | None] = mapped_column(Float)
    consecutive_dead: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class WebhookMessageRow(Base):
    """One message for one endpoint (the outbox); ``id`` is the ``webhook-id``."""

    __tablename__ = "webhook_messages"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(200))
    endpoint_id: Mapped[str] = mapped_column(String(64))
    event_type: Mapped[str] = mapped_column(String(200))
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    #: pending | delivered | dead
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    #: JSON list of the retry delays in force when the message was sent.
    schedule: Mapped[str] = mapped_column(Text)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    replays: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    delivered_at: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        Index("ix_webhook_messages_tenant_status", "tenant", "status"),
        Index("ix_webhook_messages_endpoint", "endpoint_id", "created_at"),
    )


class WebhookAttemptRow(Base):
    """One delivery attempt (the attempts log)."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    message_id: Mapped[str] = mapped_column(String(64), index=True)
    tenant: Mapped[str] = mapped_column(String(200))
    endpoint_id: Mapped[str] = mapped_column(String(64))
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[float] = mapped_column(Float)
    #: success | failure | blocked | circuit_open | gone | aborted
    outcome: Mapped[str] = mapped_column(String(16))
    status: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float | None] = mapped_column(Float)
    #: At most 500 characters of the answer, redacted.
    response_excerpt: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_webhook_attempts_endpoint", "tenant", "endpoint_id", "at"),)


class WebhookDeadLetterRow(Base):
    """A message whose attempts are exhausted (or that could not be sent at all)."""

    __tablename__ = "webhook_dead_letters"

    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(200))
    endpoint_id: Mapped[str] = mapped_column(String(64))
    at: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)
    replayed_at: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (Index("ix_webhook_dead_letters_tenant", "tenant", "endpoint_id"),)

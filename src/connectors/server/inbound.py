"""Inbound webhooks: verify the raw body, drop duplicates, hand the event to its handler.

An :class:`InboundEndpoint` is configured per endpoint name: the tenant it belongs to, its
signature scheme, the *name* of the tenant credential holding the signing secret (every field of
that credential is accepted, so a rotation keeps the old secret as a second field for a while),
and a handler. ``POST /api/webhooks/{name}`` then:

1. reads the body as bytes, before any parsing (a signature covers exact bytes);
2. verifies it — Slack's ``v0`` scheme with
   :func:`connectors.adapters.slack.verify.verify_slack_request`, every other scheme (Standard
   Webhooks, GitHub, Stripe, generic HMAC) with
   :func:`connectors.adapters.webhook.verify.verify_inbound`;
3. remembers the delivery id in the state backend (``seen_add``, tenant-scoped): a repeated
   delivery is answered ``200 duplicate`` and not dispatched again;
4. answers Slack's ``url_verification`` challenge, or calls the handler: an in-process coroutine,
   or :func:`enqueue_job`, which puts the event on the job queue (durable, retried).

An unknown endpoint and a bad signature get the same ``401``: the endpoint list is not probeable.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from connectors.audit.events import AuditEvent
from connectors.errors import AuthenticationFailed, CredentialMissing
from connectors.hub import Hub
from connectors.jobs.queue import JobQueue
from connectors.secrets.secret import Secret

__all__ = [
    "InboundEndpoint",
    "InboundEvent",
    "InboundHandler",
    "InboundOutcome",
    "InboundRegistry",
    "enqueue_job",
    "receive",
]

_REPLAY_TTL: Final = 3 * 24 * 3600.0
_MAX_BODY: Final = 1024 * 1024


@dataclass(frozen=True, slots=True)
class InboundEvent:
    """A verified inbound delivery."""

    endpoint: str
    tenant: str
    delivery_id: str
    body: bytes
    headers: Mapping[str, str]
    received_at: float

    def json(self) -> object:
        """The body as JSON (it was verified as raw bytes first)."""
        return json.loads(self.body)


InboundHandler = Callable[[InboundEvent], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class InboundEndpoint:
    """Where inbound deliveries for ``name`` go, and how they are verified."""

    name: str
    tenant: str
    scheme: Literal["standard", "github", "stripe", "slack"]
    secret: str
    handler: InboundHandler
    tolerance: float = 300.0


@dataclass
class InboundRegistry:
    """Inbound endpoints by name."""

    endpoints: dict[str, InboundEndpoint] = field(default_factory=dict)

    def add(self, endpoint: InboundEndpoint) -> None:
        self.endpoints[endpoint.name] = endpoint

    def get(self, name: str) -> InboundEndpoint | None:
        return self.endpoints.get(name)


def enqueue_job(queue: JobQueue, job: str) -> InboundHandler:
    """A handler that queues job ``job`` with the event (body as text) as its arguments."""

    async def handler(event: InboundEvent) -> None:
        await queue.enqueue(
            job,
            {
                "endpoint": event.endpoint,
                "delivery_id": event.delivery_id,
                "body": event.body.decode("utf-8", "replace"),
            },
            tenant=event.tenant,
            dedupe_key=f"inbound:{event.tenant}:{event.delivery_id}"[:200],
        )

    return handler


@dataclass(frozen=True, slots=True)
class InboundOutcome:
    """What the server answers: ``accepted``, ``duplicate`` or ``challenge``."""

    status: Literal["accepted", "duplicate", "challenge"]
    challenge: str | None = None


def _refused() -> AuthenticationFailed:
    return AuthenticationFailed("webhook refused", provider_code="refused")


async def _secrets(hub: Hub, endpoint: InboundEndpoint) -> list[Secret]:
    try:
        credential = await hub.services.credentials.get(endpoint.tenant, endpoint.secret)
    except CredentialMissing:
        return []
    return [credential.fields[k] for k in sorted(credential.fields)]


async def _verify(
    hub: Hub, endpoint: InboundEndpoint, headers: Mapping[str, str], body: bytes
) -> str:
    """Verify and deduplicate; the delivery id, or ``""`` for a duplicate."""
    secrets = await _secrets(hub, endpoint)
    if not secrets:
        raise _refused()
    if endpoint.scheme == "slack":
        from connectors.adapters.slack.verify import verify_slack_request

        for secret in secrets:
            try:
                stamp = verify_slack_request(
                    headers, body, secret, clock=hub.clock, tolerance=endpoint.tolerance
                )
            except AuthenticationFailed:
                continue
            signature = headers.get("x-slack-signature", "")
            delivery = f"{stamp}:{signature}"
            break
        else:
            raise _refused()
        digest = hashlib.sha256(delivery.encode()).hexdigest()[:32]
        key = f"{endpoint.tenant}:webhook-inbound:slack:{digest}"
        fresh = await hub.state.seen_add(key, ttl=_REPLAY_TTL, now=hub.clock.monotonic())
        return delivery if fresh else ""
    from connectors.adapters.webhook.verify import ReplayedDelivery, verify_inbound

    try:
        event = await verify_inbound(
            endpoint.scheme,
            headers,
            body,
            secrets,
            state=hub.state,
            clock=hub.clock,
            tolerance=endpoint.tolerance,
            replay_ttl=_REPLAY_TTL,
            tenant=endpoint.tenant,
        )
    except ReplayedDelivery:
        return ""
    return event.id


async def receive(
    hub: Hub,
    registry: InboundRegistry,
    name: str,
    headers: Mapping[str, str],
    body: bytes,
) -> InboundOutcome:
    """Verify, deduplicate and dispatch one delivery (raises ``AuthenticationFailed``)."""
    endpoint = registry.get(name)
    if endpoint is None or len(body) > _MAX_BODY:
        raise _refused()
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        delivery = await _verify(hub, endpoint, lowered, body)
    except AuthenticationFailed as exc:
        _audit(hub, endpoint, "denied", exc.code)
        raise _refused() from None
    if not delivery:
        return InboundOutcome("duplicate")
    if endpoint.scheme == "slack":
        challenge = _challenge(body)
        if challenge is not None:
            return InboundOutcome("challenge", challenge)
    event = InboundEvent(name, endpoint.tenant, delivery, body, lowered, hub.clock.time())
    try:
        await endpoint.handler(event)
    except Exception as exc:
        _audit(hub, endpoint, "failure", type(exc).__name__)
        raise
    _audit(hub, endpoint, "success", None)
    return InboundOutcome("accepted")


def _challenge(body: bytes) -> str | None:
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if isinstance(data, dict) and data.get("type") == "url_verification":
        value = data.get("challenge")
        return value if isinstance(value, str) else None
    return None


def _audit(
    hub: Hub,
    endpoint: InboundEndpoint,
    outcome: Literal["success", "failure", "denied"],
    code: str | None,
) -> None:
    hub.services.audit.record(
        AuditEvent.new(
            clock=hub.clock,
            kind="webhook.inbound",
            tenant=endpoint.tenant,
            actor=f"webhook:{endpoint.name}",
            operation="receive",
            target=endpoint.name,
            outcome=outcome,
            error_code=code,
        )
    )

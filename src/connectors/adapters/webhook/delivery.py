"""Delivering one webhook message: the job function and the service behind it.

One attempt, as the job runner calls it (``webhook.deliver`` with ``{"message_id": ...}``)::

    load message + endpoint ─ not pending? done.   endpoint disabled? dead letter.
    breaker (per tenant and endpoint) open? ─▶ RetryJob(retry_after)   (not an attempt)
    resolve secrets ─ sign (same webhook-id every time, fresh timestamp) ─ POST through the
    pinned transport (SSRF-vetted, no redirects, timeout) ─ read ≤ 500 chars of the answer
    record the attempt + the message's new state + the endpoint's failure run (one transaction)
    2xx ─▶ delivered.  failure ─▶ RetryJob(next delay of the message's schedule) or dead letter
    410 Gone / sustained failure ─▶ endpoint disabled, audit event

Retries are scheduled by raising :class:`~connectors.jobs.RetryJob`, so the job table holds the
next attempt time; a crash mid-attempt only repeats the attempt (at least once; receivers dedupe
on ``webhook-id``).

The hot path shares its work between concurrent deliveries: messages are loaded and successes
recorded in batches (:mod:`.journal`; a delivery returns only after its batch committed), an
endpoint's resolved secrets and HMAC keys are cached per tenant for ``secret_ttl`` seconds
(:class:`~connectors.adapters.webhook.endpoints.SigningCache`), DNS answers per host for
``dns_ttl`` seconds (still vetted on every request), and one pooled client serves each SSRF
policy (:mod:`.sender`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Protocol

import httpcore2
import httpx2

from connectors.adapters.webhook.endpoints import Endpoint, SecretSource, SigningCache
from connectors.adapters.webhook.journal import DeliveryJournal, Success
from connectors.adapters.webhook.schedule import DisablePolicy, RetrySchedule
from connectors.adapters.webhook.sender import EXCERPT_CHARS, Answer, Outcome, WebhookSender
from connectors.adapters.webhook.tables import (
    WebhookAttemptRow,
    WebhookDeadLetterRow,
    WebhookEndpointRow,
    WebhookMessageRow,
)
from connectors.audit.events import AuditEvent
from connectors.clock import Clock, system_clock
from connectors.errors import ConnectorError
from connectors.http.ssrf import Resolver
from connectors.jobs.registry import JobArgs, JobContext, JobFailed, JobRegistry, RetryJob
from connectors.observability.redaction import redact_text
from connectors.resilience.breaker import CircuitBreaker
from connectors.resilience.policies import BreakerPolicy
from connectors.state.base import BreakerOutcome, StateBackend
from connectors.state.memory import MemoryStateBackend
from connectors.storage.db import Database

__all__ = [
    "DELIVER_JOB",
    "EXCERPT_CHARS",
    "SERVICE_KEY",
    "AuditSink",
    "DeliveryOptions",
    "DeliveryResult",
    "DeliveryService",
    "deliver_job",
    "register_jobs",
]

#: The job name of a delivery.
DELIVER_JOB: Final = "webhook.deliver"
#: Where the job runner's services hold the :class:`DeliveryService`.
SERVICE_KEY: Final = "webhook"


class AuditSink(Protocol):
    """Where the endpoint-disabled event goes (``connectors.audit.AuditWriter`` is one)."""

    def record(self, event: AuditEvent) -> None: ...


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    """Delivery settings: timeout, user agent, breaker and endpoint-disable policies, caches.

    ``secret_ttl``: seconds an endpoint's resolved secrets (and HMAC keys) are reused, per tenant
    and references (0: resolve for every attempt). ``dns_ttl``: seconds a host's DNS answer is
    reused (every request still checks it against the endpoint's SSRF policy). ``max_batch``:
    the most messages loaded, or successes recorded, in one round trip.
    """

    timeout: float = 15.0
    user_agent: str = "connectors-webhooks/1.0"
    breaker: BreakerPolicy = field(
        default_factory=lambda: BreakerPolicy(failure_threshold=5, reset_timeout=60.0)
    )
    disable: DisablePolicy = field(default_factory=DisablePolicy)
    secret_ttl: float = 10.0
    dns_ttl: float = 10.0
    max_batch: int = 256


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """What one delivery attempt did."""

    message_id: str
    outcome: Outcome
    attempt: int
    status: int | None = None
    #: Seconds until the next attempt (``None``: no further attempt).
    retry_in: float | None = None
    dead: bool = False


class DeliveryService:
    """Signs and sends webhook messages; records attempts, dead letters and endpoint state.

    ``secrets`` resolves the endpoints' secret references. ``resolver`` and ``network_backend``
    are the SSRF guard's and pinned transport's seams (tests); ``transport`` replaces the pinned
    transport entirely (tests only: URLs are still vetted, the connection is not pinned).
    """

    def __init__(
        self,
        db: Database,
        *,
        secrets: SecretSource,
        state: StateBackend | None = None,
        clock: Clock = system_clock,
        options: DeliveryOptions | None = None,
        audit: AuditSink | None = None,
        resolver: Resolver | None = None,
        network_backend: httpcore2.AsyncNetworkBackend | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        redact: Callable[[str], str] = redact_text,
        max_connections: int = 100,
    ) -> None:
        self.db = db
        self.secrets = secrets
        self.clock = clock
        self.options = options or DeliveryOptions()
        self.audit = audit
        self.state: StateBackend = state if state is not None else MemoryStateBackend()
        self.breaker = CircuitBreaker(self.options.breaker, self.state, clock)
        self.signing = SigningCache(secrets, clock=clock, ttl=self.options.secret_ttl)
        self.journal = DeliveryJournal(db, max_batch=self.options.max_batch)
        self.sender = WebhookSender(
            clock=clock,
            timeout=self.options.timeout,
            resolver=resolver,
            dns_ttl=self.options.dns_ttl,
            network_backend=network_backend,
            transport=transport,
            redact=redact,
            max_connections=max_connections,
            gone_is_final=self.options.disable.on_gone,
        )

    async def aclose(self) -> None:
        """Finish the batches in flight and close the HTTP clients."""
        await self.journal.aclose()
        await self.sender.aclose()

    def invalidate(self, tenant: str | None = None) -> None:
        """Forget cached secrets (``tenant``'s, or all) and DNS answers: after a secret changed
        behind an unchanged reference, the next attempt resolves it again."""
        self.signing.invalidate(tenant)
        if tenant is None:
            self.sender.resolver.clear()

    # --- one delivery --------------------------------------------------------------------------

    async def deliver(self, message_id: str) -> DeliveryResult | None:
        """Make one attempt to deliver ``message_id``.

        Returns ``None`` when there is nothing to do (unknown, delivered or dead message),
        else the attempt's result. Raises :class:`~connectors.jobs.RetryJob` when the message
        must be tried again later (the job runner reschedules it).
        """
        message = await self.journal.load(message_id)
        if message is None or message.status != "pending":
            return None
        endpoint = message.endpoint
        if endpoint is None:
            raise JobFailed(f"endpoint {message.endpoint_id!r} of {message_id} is gone")
        attempt = message.attempts + 1
        payload = message.payload
        schedule = message.schedule
        if not endpoint.enabled:
            await self._record(
                message_id,
                endpoint,
                attempt,
                Answer("failure", error="endpoint disabled"),
                schedule,
                counted=False,
            )
            return DeliveryResult(message_id, "failure", attempt, dead=True)
        breaker_key = f"{endpoint.tenant}:webhook:endpoint:{endpoint.id}"
        permit = await self.breaker.acquire(breaker_key)
        if not permit.allowed:
            raise RetryJob(permit.retry_after or 60.0, "circuit open for the endpoint")
        outcome = BreakerOutcome.IGNORED
        try:
            try:
                signer = await self.signing.signer(endpoint)
                headers = signer.headers(message_id, int(self.clock.time()), payload)
            except ConnectorError as exc:
                answer = Answer("failure", error=f"{exc.code}: {exc.message}")
            else:
                headers["content-type"] = "application/json"
                headers["user-agent"] = self.options.user_agent
                answer = await self.sender.post(endpoint, payload, headers)
                outcome = (
                    BreakerOutcome.SUCCESS
                    if answer.outcome == "success"
                    else BreakerOutcome.FAILURE
                )
        finally:
            await self.breaker.record(breaker_key, permit, outcome)
        return await self._record(message_id, endpoint, attempt, answer, schedule, counted=True)

    async def _record(
        self,
        message_id: str,
        endpoint: Endpoint,
        attempt: int,
        answer: Answer,
        schedule: RetrySchedule,
        *,
        counted: bool,
    ) -> DeliveryResult:
        now = self.clock.time()
        if answer.outcome == "success" and counted:
            # The hot path: batched with other deliveries' successes, committed before we return.
            await self.journal.record_success(
                Success(
                    message_id=message_id,
                    tenant=endpoint.tenant,
                    endpoint_id=endpoint.id,
                    attempt=attempt,
                    at=now,
                    status=answer.status,
                    latency_ms=answer.latency_ms,
                    excerpt=answer.excerpt,
                )
            )
            return DeliveryResult(message_id, "success", attempt, answer.status)
        policy = self.options.disable
        delay: float | None = None
        dead = False
        disabled_reason: str | None = None
        async with self.db.session() as session:
            message = await session.get(WebhookMessageRow, message_id)
            row = await session.get(WebhookEndpointRow, endpoint.id)
            assert message is not None
            assert row is not None
            if counted:
                session.add(
                    WebhookAttemptRow(
                        message_id=message_id,
                        tenant=endpoint.tenant,
                        endpoint_id=endpoint.id,
                        attempt=attempt,
                        at=now,
                        outcome=answer.outcome,
                        status=answer.status,
                        latency_ms=answer.latency_ms,
                        response_excerpt=answer.excerpt,
                        error=answer.error,
                    )
                )
                message.attempts = attempt
            message.last_status = answer.status
            message.updated_at = now
            if answer.outcome == "success":
                message.status = "delivered"
                message.delivered_at = now
                message.last_error = None
                if row.failing_since is not None or row.consecutive_dead:
                    row.failing_since = None
                    row.consecutive_dead = 0
            else:
                message.last_error = answer.error
                if row.failing_since is None:
                    row.failing_since = now
                permanent = answer.outcome in ("blocked", "gone", "aborted") or not counted
                if not permanent:
                    delay = schedule.delay_after(attempt, retry_after=answer.retry_after)
                if delay is None:
                    dead = True
                    message.status = "dead"
                    reason = answer.error or answer.outcome
                    existing = await session.get(WebhookDeadLetterRow, message_id)
                    if existing is None:
                        session.add(
                            WebhookDeadLetterRow(
                                message_id=message_id,
                                tenant=endpoint.tenant,
                                endpoint_id=endpoint.id,
                                at=now,
                                reason=reason[:1000],
                            )
                        )
                    else:
                        existing.at, existing.reason, existing.replayed_at = now, reason, None
                    if counted:
                        row.consecutive_dead += 1
                if row.enabled:
                    disabled_reason = _disable_reason(row, answer.outcome, now, policy)
                    if disabled_reason is not None:
                        row.enabled = False
                        row.disabled_reason = disabled_reason
                        row.updated_at = now
        if disabled_reason is not None:
            self._audit_disabled(endpoint, disabled_reason)
        if delay is not None:
            raise RetryJob(delay, answer.error or answer.outcome)
        return DeliveryResult(message_id, answer.outcome, attempt, answer.status, None, dead)

    def _audit_disabled(self, endpoint: Endpoint, reason: str) -> None:
        if self.audit is None:
            return
        self.audit.record(
            AuditEvent.new(
                clock=self.clock,
                tenant=endpoint.tenant,
                actor="system",
                operation="disable_endpoint",
                outcome="success",
                kind="webhook.endpoint.disabled",
                connector="webhook",
                target=endpoint.id,
                details={"reason": reason},
            )
        )


def _disable_reason(
    row: WebhookEndpointRow, outcome: str, now: float, policy: DisablePolicy
) -> str | None:
    if outcome == "gone":
        return "the endpoint answered 410 Gone"
    if policy.dead_letters is not None and row.consecutive_dead >= policy.dead_letters:
        return f"{row.consecutive_dead} messages in a row ended as dead letters"
    if (
        policy.failing_for is not None
        and row.failing_since is not None
        and now - row.failing_since >= policy.failing_for
    ):
        hours = (now - row.failing_since) / 3600
        return f"every attempt failed for {hours:.0f} hours"
    return None


async def deliver_job(ctx: JobContext, args: JobArgs) -> None:
    """The ``webhook.deliver`` job: one attempt for ``args["message_id"]``."""
    message_id = args.get("message_id")
    if not isinstance(message_id, str):
        raise JobFailed("webhook.deliver needs a message_id string")
    service = ctx.service(SERVICE_KEY, DeliveryService)
    await service.deliver(message_id)


def register_jobs(registry: JobRegistry) -> None:
    """Register the webhook job functions (the schedule lives in each message, not here)."""
    if DELIVER_JOB not in registry:
        registry.register(DELIVER_JOB, deliver_job, retry_delays=(5.0, 30.0, 300.0))

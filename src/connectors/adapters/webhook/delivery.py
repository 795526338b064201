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
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol

import httpcore2
import httpx2
from sqlalchemy import insert, select, update

from connectors.adapters.webhook.endpoints import (
    Endpoint,
    SecretSource,
    endpoint_from_row,
    resolve_secrets,
)
from connectors.adapters.webhook.schedule import DisablePolicy, RetrySchedule
from connectors.adapters.webhook.signing import sign_headers
from connectors.adapters.webhook.tables import (
    WebhookAttemptRow,
    WebhookDeadLetterRow,
    WebhookEndpointRow,
    WebhookMessageRow,
)
from connectors.audit.events import AuditEvent
from connectors.clock import Clock, system_clock
from connectors.errors import BlockedDestination, ConnectorError
from connectors.http.pinned import PinnedTransport
from connectors.http.ssrf import Resolver, SsrfGuard
from connectors.jobs.registry import JobArgs, JobContext, JobFailed, JobRegistry, RetryJob
from connectors.observability.redaction import redact_text
from connectors.resilience.breaker import CircuitBreaker
from connectors.resilience.policies import BreakerPolicy
from connectors.resilience.retry import parse_retry_after
from connectors.state.base import BreakerOutcome, StateBackend
from connectors.state.memory import MemoryStateBackend
from connectors.storage.db import Database

__all__ = [
    "DELIVER_JOB",
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
#: The longest answer excerpt kept in the attempts log.
EXCERPT_CHARS: Final = 500

Outcome = Literal["success", "failure", "blocked", "gone", "aborted", "circuit_open"]


class AuditSink(Protocol):
    """Where the endpoint-disabled event goes (``connectors.audit.AuditWriter`` is one)."""

    def record(self, event: AuditEvent) -> None: ...


@dataclass(frozen=True, slots=True)
class DeliveryOptions:
    """Delivery settings: timeout, user agent, breaker and endpoint-disable policies."""

    timeout: float = 15.0
    user_agent: str = "connectors-webhooks/1.0"
    breaker: BreakerPolicy = field(
        default_factory=lambda: BreakerPolicy(failure_threshold=5, reset_timeout=60.0)
    )
    disable: DisablePolicy = field(default_factory=DisablePolicy)


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


@dataclass(slots=True)
class _Answer:
    outcome: Outcome
    status: int | None = None
    excerpt: str | None = None
    error: str | None = None
    retry_after: float | None = None
    latency_ms: float | None = None


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
        self._resolver = resolver
        self._backend = network_backend
        self._transport = transport
        self._redact = redact
        self._limits = httpx2.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._clients: dict[tuple[tuple[str, ...], tuple[str, ...]], httpx2.AsyncClient] = {}

    # --- HTTP ----------------------------------------------------------------------------------

    def _client(self, endpoint: Endpoint) -> tuple[httpx2.AsyncClient, SsrfGuard]:
        key = (endpoint.allow_nets, endpoint.allow_hosts)
        guard = SsrfGuard(endpoint.policy, resolver=self._resolver)
        client = self._clients.get(key)
        if client is None:
            transport = self._transport or PinnedTransport(
                guard, limits=self._limits, network_backend=self._backend
            )
            client = httpx2.AsyncClient(
                transport=transport,
                follow_redirects=False,
                trust_env=False,
                timeout=self.options.timeout,
                limits=self._limits,
            )
            self._clients[key] = client
        return client, guard

    async def aclose(self) -> None:
        """Close the HTTP clients."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()

    async def _post(self, endpoint: Endpoint, body: bytes, headers: dict[str, str]) -> _Answer:
        client, guard = self._client(endpoint)
        started = self.clock.monotonic()
        try:
            if self._transport is not None:
                await guard.vet(endpoint.url)  # pinned transports vet inside; mocks do not
            request = client.build_request("POST", endpoint.url, content=body, headers=headers)
            response = await client.send(request, stream=True)
            try:
                raw = bytearray()
                async for chunk in response.aiter_bytes():
                    raw += chunk
                    if len(raw) >= EXCERPT_CHARS * 4:
                        break
            finally:
                await response.aclose()
        except BlockedDestination as exc:
            return _Answer("blocked", error=exc.message)
        except ConnectorError as exc:  # DNS failure (ConnectionFailed) and the like
            return _Answer("failure", error=f"{exc.code}: {exc.message}")
        except httpx2.HTTPError as exc:
            return _Answer("failure", error=type(exc).__name__)
        latency = (self.clock.monotonic() - started) * 1000
        status = response.status_code
        excerpt = self._redact(raw.decode("utf-8", "replace"))[:EXCERPT_CHARS] if raw else None
        if 200 <= status < 300:
            return _Answer("success", status, excerpt, latency_ms=latency)
        outcome: Outcome = "failure"
        if status == 410 and self.options.disable.on_gone:
            outcome = "gone"
        elif response.headers.get("webhook-delivery", "").lower() == "abort-message":
            outcome = "aborted"
        retry_after = None
        if status in (429, 502, 503, 504) and "retry-after" in response.headers:
            retry_after = parse_retry_after(response.headers["retry-after"], self.clock.time())
        error = "redirects are not followed" if 300 <= status < 400 else f"HTTP {status}"
        return _Answer(outcome, status, excerpt, error, retry_after, latency)

    # --- one delivery --------------------------------------------------------------------------

    async def deliver(self, message_id: str) -> DeliveryResult | None:
        """Make one attempt to deliver ``message_id``.

        Returns ``None`` when there is nothing to do (unknown, delivered or dead message),
        else the attempt's result. Raises :class:`~connectors.jobs.RetryJob` when the message
        must be tried again later (the job runner reschedules it).
        """
        stmt = (
            select(WebhookMessageRow, WebhookEndpointRow)
            .outerjoin(WebhookEndpointRow, WebhookEndpointRow.id == WebhookMessageRow.endpoint_id)
            .where(WebhookMessageRow.id == message_id)
        )
        async with self.db.session() as session:
            found = (await session.execute(stmt)).first()
            if found is None or found[0].status != "pending":
                return None
            message, row = found
            if row is None:
                raise JobFailed(f"endpoint {message.endpoint_id!r} of {message_id} is gone")
            endpoint = endpoint_from_row(row)
            attempt = message.attempts + 1
            payload = message.payload
            schedule = RetrySchedule.of(json.loads(message.schedule))
        if not endpoint.enabled:
            await self._record(
                message_id,
                endpoint,
                attempt,
                _Answer("failure", error="endpoint disabled"),
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
                secrets = await resolve_secrets(endpoint, self.secrets)
                headers = sign_headers(
                    endpoint.scheme,
                    message_id,
                    int(self.clock.time()),
                    payload,
                    secrets,
                    custom=endpoint.custom,
                )
            except ConnectorError as exc:
                answer = _Answer("failure", error=f"{exc.code}: {exc.message}")
            else:
                headers["content-type"] = "application/json"
                headers["user-agent"] = self.options.user_agent
                answer = await self._post(endpoint, payload, headers)
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
        answer: _Answer,
        schedule: RetrySchedule,
        *,
        counted: bool,
    ) -> DeliveryResult:
        now = self.clock.time()
        if answer.outcome == "success" and endpoint.failing_since is None:
            # The hot path: two statements, no reads (the endpoint had no failure run).
            await self._record_success(message_id, endpoint, attempt, answer, now)
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

    async def _record_success(
        self, message_id: str, endpoint: Endpoint, attempt: int, answer: _Answer, now: float
    ) -> None:
        async with self.db.session() as session:
            await session.execute(
                insert(WebhookAttemptRow).values(
                    message_id=message_id,
                    tenant=endpoint.tenant,
                    endpoint_id=endpoint.id,
                    attempt=attempt,
                    at=now,
                    outcome="success",
                    status=answer.status,
                    latency_ms=answer.latency_ms,
                    response_excerpt=answer.excerpt,
                    error=None,
                )
            )
            await session.execute(
                update(WebhookMessageRow)
                .where(WebhookMessageRow.id == message_id)
                .values(
                    status="delivered",
                    attempts=attempt,
                    last_status=answer.status,
                    last_error=None,
                    updated_at=now,
                    delivered_at=now,
                )
                .execution_options(synchronize_session=False)
            )
            if endpoint.consecutive_dead:
                await session.execute(
                    update(WebhookEndpointRow)
                    .where(WebhookEndpointRow.id == endpoint.id)
                    .values(consecutive_dead=0, failing_since=None)
                    .execution_options(synchronize_session=False)
                )

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

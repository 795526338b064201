"""The webhook connector: durable, signed outbound delivery for one tenant.

``send`` writes the message and its delivery job to the SQL store (inside the caller's
transaction when a session is given) and returns the ``webhook-id``; the job runner delivers it
at least once on the retry schedule (:mod:`connectors.adapters.webhook.delivery`). The other
operations manage endpoints, replay dead letters and read the attempts log.

Runtime wiring (``ConnectorRuntime.extras``), each optional:

* ``"database"``: the :class:`~connectors.storage.db.Database` (else ``settings.database_url``,
  else an error): the connector never creates tables in a database it was handed;
* ``"secrets"``: a :class:`~connectors.adapters.webhook.endpoints.SecretSource` (the Hub's
  resolver registry) for ``deliver_now`` (else ``env:``/``file:`` resolvers);
* ``"state"``: the :class:`~connectors.state.StateBackend` for the per-endpoint breaker;
* ``"audit"``: an :class:`~connectors.adapters.webhook.delivery.AuditSink` for endpoint-disabled
  events;
* ``"delivery"``: a ready :class:`~connectors.adapters.webhook.delivery.DeliveryService` (the
  one the job runner uses) to share with ``deliver_now``.

Settings: ``database_url``, ``retry_schedule`` (seconds, first usually 0), ``retry_jitter``,
``max_payload_bytes`` (default 262144), ``timeout`` (seconds, default 15),
``disable_after_hours`` (default 120), ``disable_after_dead_letters`` (default 5).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import cast

from sqlalchemy.ext.asyncio import AsyncSession

from connectors.adapters.webhook.delivery import (
    AuditSink,
    DeliveryOptions,
    DeliveryResult,
    DeliveryService,
)
from connectors.adapters.webhook.endpoints import Endpoint, EndpointStore, SecretSource
from connectors.adapters.webhook.outbox import (
    DEFAULT_MAX_PAYLOAD,
    AttemptInfo,
    DeadLetterInfo,
    WebhookOutbox,
)
from connectors.adapters.webhook.schedule import DEFAULT_DELAYS, DisablePolicy, RetrySchedule
from connectors.adapters.webhook.signing import HmacScheme, SigningScheme
from connectors.base import Connector, ConnectorRuntime, operation
from connectors.errors import ConfigurationError, InvalidSetting
from connectors.jobs.registry import RetryJob
from connectors.observability.health import Health, HealthCheck, HealthStatus
from connectors.secrets.resolvers import ResolverRegistry
from connectors.state.base import StateBackend
from connectors.storage.db import Database

__all__ = ["WebhookConnector"]


def _number(settings: Mapping[str, object], key: str, default: float) -> float:
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidSetting(key, value, "a number")
    try:
        number = float(value)
    except ValueError:
        raise InvalidSetting(key, value, "a number") from None
    if number < 0:
        raise InvalidSetting(key, value, "a number ≥ 0")
    return number


class WebhookConnector(Connector):
    """Signed, durable webhook delivery (Standard Webhooks) with retries and dead letters."""

    name = "webhook"
    version = "1.0.0"

    def __init__(self, runtime: ConnectorRuntime) -> None:
        super().__init__(runtime)
        self._db: Database | None = None
        self._own_db = False
        self._outbox: WebhookOutbox | None = None
        self._endpoints: EndpointStore | None = None
        self._delivery: DeliveryService | None = None
        self._own_delivery = False

    # --- lifecycle -----------------------------------------------------------------------------

    async def on_connect(self) -> None:
        settings = self.runtime.settings
        extras = self.runtime.extras
        db = extras.get("database")
        if db is None:
            url = settings.get("database_url")
            if not isinstance(url, str) or not url:
                raise ConfigurationError(
                    "the webhook connector needs a database",
                    connector=self.instance_name,
                    hint="set settings.database_url or give the Hub a database",
                )
            db = Database(url)
            self._own_db = True
            await db.create_all()
        if not isinstance(db, Database):
            raise ConfigurationError("runtime.extras['database'] is not a Database")
        self._db = db
        raw_delays = settings.get("retry_schedule", DEFAULT_DELAYS)
        if not isinstance(raw_delays, Sequence) or isinstance(raw_delays, str):
            raise InvalidSetting("retry_schedule", raw_delays, "a list of seconds")
        schedule = RetrySchedule.of(
            [float(cast("float", d)) for d in raw_delays],
            jitter=_number(settings, "retry_jitter", 0.0),
        )
        clock = self.runtime.clock
        self._outbox = WebhookOutbox(
            db,
            clock=clock,
            schedule=schedule,
            max_payload=int(_number(settings, "max_payload_bytes", DEFAULT_MAX_PAYLOAD)),
        )
        self._endpoints = EndpointStore(db, clock=clock)
        shared = extras.get("delivery")
        if isinstance(shared, DeliveryService):
            self._delivery = shared

    async def on_disconnect(self) -> None:
        if self._delivery is not None and self._own_delivery:
            await self._delivery.aclose()
        self._delivery = None
        if self._db is not None and self._own_db:
            await self._db.dispose()
        self._db = None

    def _require(self) -> tuple[WebhookOutbox, EndpointStore]:
        if self._outbox is None or self._endpoints is None:
            raise ConfigurationError("the webhook connector is not connected")
        return self._outbox, self._endpoints

    def delivery_service(self) -> DeliveryService:
        """The delivery service ``deliver_now`` uses (the shared one, or one of its own)."""
        if self._delivery is None:
            outbox, _ = self._require()
            extras = self.runtime.extras
            settings = self.runtime.settings
            secrets = extras.get("secrets") or ResolverRegistry.with_builtins(discover=False)
            hours = _number(settings, "disable_after_hours", 120.0)
            dead = int(_number(settings, "disable_after_dead_letters", 5))
            self._delivery = DeliveryService(
                outbox.db,
                secrets=cast("SecretSource", secrets),
                state=cast("StateBackend | None", extras.get("state")),
                clock=self.runtime.clock,
                audit=cast("AuditSink | None", extras.get("audit")),
                options=DeliveryOptions(
                    timeout=_number(settings, "timeout", 15.0),
                    disable=DisablePolicy(
                        failing_for=hours * 3600 if hours else None,
                        dead_letters=dead or None,
                    ),
                ),
            )
            self._own_delivery = True
        return self._delivery

    # --- operations ----------------------------------------------------------------------------

    @operation(idempotent=True, audit_target="endpoint")
    async def send(
        self,
        event_type: str,
        payload: object,
        endpoint: str,
        *,
        session: AsyncSession | None = None,
        message_id: str | None = None,
    ) -> str:
        """Queue ``payload`` for ``endpoint``; returns the ``webhook-id``.

        Idempotent by ``message_id`` (the ``webhook-id``). With ``session`` the message commits
        or rolls back with the caller's transaction.
        """
        outbox, _ = self._require()
        return await outbox.send(
            self.tenant, event_type, payload, endpoint, session=session, message_id=message_id
        )

    @operation(idempotent=True, audit_target="message_id")
    async def deliver_now(self, message_id: str) -> DeliveryResult | None:
        """Make one delivery attempt now, in this task (scripts; the runner does this too)."""
        outbox, _ = self._require()
        await outbox.message_status(self.tenant, message_id)  # tenant check
        try:
            return await self.delivery_service().deliver(message_id)
        except RetryJob as retry:
            [last] = (await outbox.attempts(self.tenant, message_id=message_id, limit=1000))[-1:]
            await outbox.jobs.enqueue(
                "webhook.deliver",
                {"message_id": message_id},
                run_at=self.runtime.clock.time() + retry.delay,
                tenant=self.tenant,
            )
            return DeliveryResult(
                message_id, "failure", last.attempt, last.status, retry_in=retry.delay
            )

    @operation(idempotent=False)
    async def replay(
        self, *, endpoint: str | None = None, message_id: str | None = None
    ) -> list[str]:
        """Queue this tenant's dead letters again (same ids); returns the replayed ids."""
        outbox, _ = self._require()
        return await outbox.replay(self.tenant, endpoint_id=endpoint, message_id=message_id)

    @operation(idempotent=True)
    async def attempts(
        self, *, message_id: str | None = None, endpoint: str | None = None, limit: int = 100
    ) -> list[AttemptInfo]:
        """The attempts log per message and/or endpoint."""
        outbox, _ = self._require()
        return await outbox.attempts(
            self.tenant, message_id=message_id, endpoint_id=endpoint, limit=limit
        )

    @operation(idempotent=True)
    async def dead_letters(
        self, *, endpoint: str | None = None, limit: int = 100
    ) -> list[DeadLetterInfo]:
        """Dead letters not yet replayed, newest first."""
        outbox, _ = self._require()
        return await outbox.dead_letters(self.tenant, endpoint_id=endpoint, limit=limit)

    @operation(idempotent=False, permission="connector.configure")
    async def create_endpoint(
        self,
        url: str,
        secret_refs: Sequence[str],
        *,
        scheme: SigningScheme | str = SigningScheme.STANDARD,
        custom: HmacScheme | None = None,
        allow_nets: Sequence[str] = (),
        allow_hosts: Sequence[str] = (),
        endpoint_id: str | None = None,
    ) -> Endpoint:
        """Register a target (SSRF-checked); secrets are references like ``${secret:NAME}``."""
        _, endpoints = self._require()
        return await endpoints.create(
            self.tenant,
            url,
            secret_refs,
            scheme=scheme,
            custom=custom,
            allow_nets=allow_nets,
            allow_hosts=allow_hosts,
            endpoint_id=endpoint_id,
        )

    @operation(idempotent=True, audit_target="endpoint", permission="connector.configure")
    async def set_endpoint_enabled(self, endpoint: str, enabled: bool) -> Endpoint:
        """Enable (clears failure counters) or disable an endpoint."""
        _, endpoints = self._require()
        return await endpoints.set_enabled(self.tenant, endpoint, enabled)

    @operation(idempotent=True)
    async def endpoints(self) -> list[Endpoint]:
        """This tenant's endpoints."""
        _, endpoints = self._require()
        return await endpoints.list(self.tenant)

    async def health_check(self) -> Health:
        """Outbox lag, dead letters and disabled endpoints: any of them → degraded."""
        outbox, _ = self._require()
        now = self.runtime.clock.time()
        stats = await outbox.stats(self.tenant)
        lag = stats.oldest_pending_age or 0.0
        checks = [
            HealthCheck(
                "outbox_lag",
                HealthStatus.DEGRADED if lag > 300 else HealthStatus.HEALTHY,
                f"{stats.pending} pending, oldest {lag:.0f}s",
                now,
                {"pending": stats.pending, "oldest_pending_age": lag},
            ),
            HealthCheck(
                "dead_letters",
                HealthStatus.DEGRADED if stats.dead_letters else HealthStatus.HEALTHY,
                f"{stats.dead_letters} dead letters",
                now,
                {"count": stats.dead_letters},
            ),
            HealthCheck(
                "endpoints",
                HealthStatus.DEGRADED if stats.disabled_endpoints else HealthStatus.HEALTHY,
                f"{stats.disabled_endpoints} disabled endpoints",
                now,
                {"disabled": stats.disabled_endpoints},
            ),
        ]
        return Health.from_checks(checks, observed_at=now)

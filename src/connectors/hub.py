"""The Hub: the runtime every connector instance is built from.

A Hub holds the settings, the connector definitions, the adapter registry, the shared state
backend (rate limits, breakers, token locks), metrics and health trackers, and later the credential
store, audit sink, access policy and job runner. ``connectors.get_connector`` and
``connectors.open_connector`` use :meth:`Hub.default`; tests and applications with several
configurations build their own.
"""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import httpx2

from connectors.auth.manager import TokenManager
from connectors.base import Connector, ConnectorRuntime
from connectors.checks import checked_resolver
from connectors.clock import Clock, system_clock
from connectors.config.definition import ConnectorDefinition, ResilienceOverrides
from connectors.config.settings import Settings
from connectors.context import DEFAULT_ACTOR
from connectors.errors import CredentialMissing, DefinitionError, UnknownConnector
from connectors.observability.health import HealthTracker
from connectors.observability.logging import get_logger
from connectors.observability.metrics import Metrics
from connectors.registry import AdapterRegistry
from connectors.resilience import (
    BreakerPolicy,
    BulkheadPolicy,
    Pipeline,
    RateLimit,
    ResiliencePolicy,
    RetryPolicy,
)
from connectors.resilience.events import (
    BreakerTransitionEvent,
    BulkheadRejectedEvent,
    RateLimitWaitEvent,
    RetryEvent,
)
from connectors.services import HubServices
from connectors.state import MemoryStateBackend, StateBackend

if TYPE_CHECKING:
    from connectors.jobs.select import JobRunner

__all__ = ["Hub", "build_policy"]

_log = get_logger("connectors.circuit")

_default_hub: Hub | None = None
_default_lock = threading.Lock()


class Hub:
    """The runtime: settings, definitions, registry, state, metrics, health."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        definitions: Mapping[str, ConnectorDefinition] | None = None,
        registry: AdapterRegistry | None = None,
        state: StateBackend | None = None,
        clock: Clock = system_clock,
        metrics: Metrics | None = None,
        transports: Mapping[str, httpx2.AsyncBaseTransport] | None = None,
        tokens: TokenManager | None = None,
        enforce_access: bool = True,
    ) -> None:
        self.settings = settings if settings is not None else Settings.load()
        self.definitions: dict[str, ConnectorDefinition] = dict(definitions or {})
        self.registry = registry if registry is not None else AdapterRegistry()
        self.clock = clock
        self.metrics = (
            metrics
            if metrics is not None
            else Metrics(tenant_label=self.settings.metrics_tenant_label)
        )
        self.state: StateBackend = state if state is not None else self._default_state()
        #: Transports by connector name (emulators in process, tests); None = the network.
        self.transports: dict[str, httpx2.AsyncBaseTransport] = dict(transports or {})
        #: Database, credential store, resolvers, tokens, audit and access, built on first use.
        self.services = HubServices(self.settings, clock=clock, state=self.state)
        self._tokens = tokens
        #: Whether operations check the actor's role (off only for tests of other layers).
        self.enforce_access = enforce_access
        self._jobs: JobRunner | None = None
        self._pipelines: dict[tuple[str, ResiliencePolicy], Pipeline] = {}
        self._health: dict[tuple[str, str], HealthTracker] = {}
        self._lock = threading.Lock()

    def _default_state(self) -> StateBackend:
        """In-memory state, or Redis when ``CONNECTOR_STATE_BACKEND=redis``."""
        if self.settings.state_backend != "redis":
            return MemoryStateBackend()
        from connectors.state.redis import RedisStateBackend

        return RedisStateBackend(
            self.settings.redis_url,
            clock=self.settings.redis_clock,
            on_unavailable=self.settings.state_on_unavailable,
            on_fallback=self.metrics.state_fallback,
        )

    # --- construction ---------------------------------------------------------------------------

    @classmethod
    def default(cls) -> Hub:
        """The process-wide Hub: ``$CONNECTOR_CONFIG``, else ``./connectors.yaml``, else built-in
        defaults (SQLite under ``./.connectors/``, in-memory state)."""
        global _default_hub
        with _default_lock:
            if _default_hub is None:
                settings = Settings.load()
                path = settings.config
                if path is None and Path("connectors.yaml").is_file():
                    path = Path("connectors.yaml")
                _default_hub = cls.from_file(path, settings) if path else cls(settings)
            return _default_hub

    @classmethod
    def set_default(cls, hub: Hub | None) -> None:
        """Replace (or with ``None`` forget) the process-wide Hub; for tests and applications."""
        global _default_hub
        with _default_lock:
            _default_hub = hub

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], settings: Settings | None = None) -> Hub:
        """A Hub from a ``connectors.yaml`` whose ``connectors:`` maps names to definitions."""
        from connectors.config.loader import load_config

        loaded = load_config(path)
        definitions = {name: item.definition for name, item in loaded.items()}
        return cls(settings, definitions=definitions)

    # --- connectors -----------------------------------------------------------------------------

    def definition(self, name: str) -> ConnectorDefinition:
        """The definition called ``name``; an adapter name without a definition gets an empty
        one, so ``get_connector("salesforce", ...)`` works on built-in defaults."""
        found = self.definitions.get(name)
        if found is not None:
            return found
        if name in self.registry:
            return ConnectorDefinition(type=name)
        known = sorted(set(self.definitions) | set(self.registry.names()))
        import difflib

        raise UnknownConnector(name, known, difflib.get_close_matches(name, known, n=3))

    def connector(
        self,
        name: str,
        *,
        tenant_id: str,
        actor: str = DEFAULT_ACTOR,
        settings: Mapping[str, object] | None = None,
        resilience: ResilienceOverrides | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> Connector:
        """A new, not yet connected connector instance bound to one tenant and actor."""
        if not tenant_id:
            raise DefinitionError("tenant_id must be a non-empty string")
        definition = self.definition(name)
        adapter = self.registry.get(definition.type)
        merged: dict[str, object] = {**definition.settings, **(settings or {})}
        policy = build_policy(self.settings, definition.resilience, resilience, definition)
        runtime = ConnectorRuntime(
            instance_name=name,
            tenant=tenant_id,
            actor=actor,
            settings=merged,
            pipeline=self.pipeline(name, policy),
            metrics=self.metrics,
            health=self.health_tracker(name, tenant_id),
            clock=self.clock,
            deadline_seconds=policy.deadline,
            transport=transport if transport is not None else self.transports.get(name),
            tokens=self._tokens,
            access=self.services.access if self.enforce_access else None,
            audit=self.services,
            resolve_settings=self.services.settings_resolver(tenant_id),
            token_provider=lambda: self.tokens,
            before_connect=self.start,
        )
        credential = merged.get("oauth_credential")
        if isinstance(credential, str) and credential:
            runtime.granted_scopes = self.granted_scopes(tenant_id, credential)
        # The definition itself (not the tenant-overridable settings) for adapters whose shape it
        # defines, and the Hub's database for adapters with durable state (webhook outbox).
        runtime.extras["definition"] = definition
        runtime.extras["database"] = self.services.database
        runtime.extras["secrets"] = self.services.resolvers
        runtime.extras["state"] = self.state
        runtime.extras["audit"] = self.services
        # Connecting checks compatibility first (versions, credentials, scopes), with the same
        # messages as `connectors check`.
        checked = checked_resolver(self, name, definition, tenant_id, runtime.resolve_settings)

        async def resolve(raw: Mapping[str, object]) -> Mapping[str, object]:
            values = await checked(raw)
            # Which stored credential this instance holds, for its operations' audit records.
            runtime.credential = await self.services.credential_in_use(tenant_id, raw)
            return values

        runtime.resolve_settings = resolve
        return adapter(runtime)

    @property
    def tokens(self) -> TokenManager:
        """The token manager: the one given to the Hub, else one persisting to the encrypted
        credential store (which needs a master key, or dev mode)."""
        return self._tokens if self._tokens is not None else self.services.tokens

    @property
    def jobs(self) -> JobRunner:
        """The background job runner picked from configuration (``CONNECTOR_JOBS_BACKEND``):
        the local runner on the Hub's database, or procrastinate on PostgreSQL."""
        if self._jobs is None:
            from connectors.jobs.select import job_runner_for

            self._jobs = job_runner_for(self)
        return self._jobs

    def granted_scopes(
        self, tenant: str, credential: str
    ) -> Callable[[], Awaitable[frozenset[str] | None]]:
        """The scopes granted to an OAuth credential: from the token manager's store, else the
        ``scopes`` metadata of the tenant's stored credential (``connectors credentials set
        --scopes``); ``None`` when neither records any, so nothing can be checked."""

        async def granted() -> frozenset[str] | None:
            stored = await self.tokens.store.load(tenant, credential)
            if stored is not None:
                return frozenset(stored.token.scopes)
            try:
                recorded = await self.services.credentials.get(tenant, credential)
            except CredentialMissing:
                return None
            scopes = recorded.metadata.get("scopes")
            return frozenset(str(s) for s in scopes) if isinstance(scopes, list) else None

        return granted

    async def start(self, *, pool_connections: bool = False) -> None:
        """Create the schema if needed and start background services. Idempotent.

        ``pool_connections``: this loop will run for long (a server, a worker): pool database
        connections on it. Call :meth:`aclose` from the same loop before it ends.
        """
        if pool_connections:
            self.services.database.pool_on_this_loop()
        await self.services.start()

    @asynccontextmanager
    async def open(
        self,
        name: str,
        *,
        tenant_id: str,
        actor: str = DEFAULT_ACTOR,
        settings: Mapping[str, object] | None = None,
        resilience: ResilienceOverrides | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
    ) -> AsyncIterator[Connector]:
        """Open a connected connector for the block; always disconnected afterwards."""
        conn = self.connector(
            name,
            tenant_id=tenant_id,
            actor=actor,
            settings=settings,
            resilience=resilience,
            transport=transport,
        )
        await self.start()
        await conn.connect()
        try:
            yield conn
        finally:
            await conn.disconnect()

    # --- shared runtime pieces ------------------------------------------------------------------

    def pipeline(self, name: str, policy: ResiliencePolicy) -> Pipeline:
        """One pipeline per connector name and policy; its state is keyed per tenant."""
        key = (name, policy)
        found = self._pipelines.get(key)
        if found is None:
            with self._lock:
                found = self._pipelines.get(key)
                if found is None:
                    found = Pipeline(
                        name,
                        policy,
                        state=self.state,
                        clock=self.clock,
                        listener=_MetricsListener(self.metrics),
                    )
                    self._pipelines[key] = found
        return found

    def health_tracker(self, name: str, tenant: str) -> HealthTracker:
        """The health tracker of one connector for one tenant."""
        key = (name, tenant)
        found = self._health.get(key)
        if found is None:
            with self._lock:
                found = self._health.setdefault(key, HealthTracker(clock=self.clock))
        return found

    def health_trackers(self) -> dict[tuple[str, str], HealthTracker]:
        """Every (connector, tenant) tracker seen so far."""
        return dict(self._health)

    async def aclose(self) -> None:
        """Flush the audit log and release database and Redis connections."""
        await self.services.close()
        close = getattr(self.state, "aclose", None)
        if close is not None:
            await close()


T = TypeVar("T")


def build_policy(
    settings: Settings,
    definition: ResilienceOverrides | None = None,
    explicit: ResilienceOverrides | None = None,
    connector: ConnectorDefinition | None = None,
) -> ResiliencePolicy:
    """Resilience policy by precedence: explicit > definition > environment > defaults."""
    layers = [layer for layer in (explicit, definition) if layer is not None]

    def first(get: Callable[[ResilienceOverrides], T | None], fallback: T) -> T:
        for layer in layers:
            value = get(layer)
            if value is not None:
                return value
        return fallback

    s = settings
    slow_ms = first(lambda r: r.circuit_breaker.slow_call_ms, None)
    deadline_ms = first(lambda r: r.deadline_ms, s.deadline_ms)
    if connector is not None and connector.rate_limits:
        rate_limits = tuple(
            RateLimit(key=r.key, rate=r.rate, burst=r.burst, cost=r.cost)
            for r in connector.rate_limits
        )
    elif s.rate_limit_rps is not None:
        rate_limits = (RateLimit(key="default", rate=s.rate_limit_rps, burst=s.rate_limit_burst),)
    else:
        rate_limits = ()
    return ResiliencePolicy(
        retry=RetryPolicy(
            max_attempts=first(lambda r: r.retry.max_attempts, s.retry_max_attempts),
            base_delay=first(lambda r: r.retry.base_delay_ms, s.retry_base_delay_ms) / 1000,
            max_delay=first(lambda r: r.retry.max_delay_ms, s.retry_max_delay_ms) / 1000,
        ),
        breaker=BreakerPolicy(
            mode=first(lambda r: r.circuit_breaker.mode, "consecutive"),
            failure_threshold=first(
                lambda r: r.circuit_breaker.threshold, s.circuit_breaker_threshold
            ),
            failure_ratio=first(lambda r: r.circuit_breaker.failure_ratio, 0.5),
            minimum_calls=first(lambda r: r.circuit_breaker.minimum_calls, 10),
            window=first(lambda r: r.circuit_breaker.window_ms, 60_000) / 1000,
            reset_timeout=first(lambda r: r.circuit_breaker.reset_ms, s.circuit_breaker_reset_ms)
            / 1000,
            half_open_max_calls=first(lambda r: r.circuit_breaker.half_open_max_calls, 1),
            slow_call_duration=None if slow_ms is None else slow_ms / 1000,
        ),
        bulkhead=BulkheadPolicy(
            max_concurrent=first(lambda r: r.bulkhead.max_concurrent, s.bulkhead_max_concurrent),
            max_queue=first(lambda r: r.bulkhead.max_queue, s.bulkhead_max_queue),
        ),
        attempt_timeout=first(lambda r: r.timeout_ms, s.timeout_ms) / 1000,
        deadline=None if deadline_ms is None else deadline_ms / 1000,
        rate_limits=rate_limits,
    )


class _MetricsListener:
    """Feeds resilience events into Prometheus metrics."""

    __slots__ = ("_metrics",)

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def on_retry(self, event: RetryEvent) -> None:
        self._metrics.retry(event.pipeline, event.tenant, event.operation, event.reason)

    def on_breaker_transition(self, event: BreakerTransitionEvent) -> None:
        self._metrics.circuit_transition(
            event.pipeline, event.tenant, event.from_state, event.to_state
        )
        self._metrics.circuit_state(event.pipeline, event.tenant, event.to_state)
        log = _log.warning if event.to_state in ("open", "forced_open") else _log.info
        log(
            "circuit.transition",
            connector=event.pipeline,
            tenant=event.tenant,
            from_state=event.from_state,
            to_state=event.to_state,
        )

    def on_rate_limit_wait(self, event: RateLimitWaitEvent) -> None:
        self._metrics.rate_limit_wait(event.pipeline, event.tenant, event.wait)

    def on_bulkhead_rejected(self, event: BulkheadRejectedEvent) -> None:
        """Rejections are already visible as failed operations (BulkheadFull)."""

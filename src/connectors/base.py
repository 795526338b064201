"""The Connector contract: a base class with lifecycle hooks, and the ``@operation`` decorator.

An adapter subclasses :class:`Connector`, declares ``name`` and ``version``, implements
``on_connect``/``on_disconnect``/``health_check`` as needed, and marks each public call with
``@operation``. It never repeats cross-cutting work: the decorator checks access and scopes, sets
the call's context and deadline, opens a span, times the call, and records metrics, health, the
audit event and the log line; ``self.request(...)`` sends HTTP through the resilience pipeline.

::

    class Echo(Connector):
        name = "echo"
        version = "1.0.0"

        @operation(idempotent=True, scopes=("read",))
        async def ping(self, text: str) -> str:
            response = await self.request("GET", "/ping", params={"q": text})
            return response.text
"""

from __future__ import annotations

import re
from collections.abc import (
    Awaitable,
    Callable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from types import TracebackType
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    ParamSpec,
    Protocol,
    TypeVar,
)

import httpx2

from connectors.clock import Clock, system_clock
from connectors.context import (
    CallContext,
    Deadline,
    new_request_id,
)
from connectors.errors import (
    ConfigurationError,
)
from connectors.lifecycle import Lifecycle, State
from connectors.observability.health import Health, HealthCheck, HealthTracker
from connectors.observability.logging import get_logger
from connectors.observability.metrics import Metrics
from connectors.operations import (
    OperationInfo,
    OperationOutcome,
    _current_scope,
    _Scope,
    current_operation,
    operation,
)
from connectors.resilience import Attempt, Pipeline, RateLimit

if TYPE_CHECKING:
    from connectors.auth.manager import TokenManager
    from connectors.http import ConnectorHttpClient

__all__ = [
    "AccessChecker",
    "AuditRecorder",
    "Connector",
    "ConnectorRuntime",
    "OperationInfo",
    "OperationOutcome",
    "current_operation",
    "operation",
]

P = ParamSpec("P")
R = TypeVar("R")
C = TypeVar("C", bound="Connector")

_SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")

_log = get_logger("connectors.operation")


class AccessChecker(Protocol):
    """What the operation path needs from access control."""

    async def check(self, actor: str, tenant: str, permission: str) -> None:
        """Return if allowed; raise :class:`~connectors.errors.AccessDenied` otherwise."""
        ...


class AuditRecorder(Protocol):
    """What the operation path needs from the audit layer: a cheap, non-blocking record, and a
    flush when a connector closes (so no event waits on a loop that is about to end)."""

    def record_operation(self, outcome: OperationOutcome) -> None: ...

    async def flush(self) -> None: ...


@dataclass(slots=True)
class ConnectorRuntime:
    """Everything the Hub hands a connector instance. Adapters read ``settings`` and use
    ``http``; the rest is used by the base class."""

    instance_name: str
    tenant: str
    actor: str
    settings: Mapping[str, object]
    pipeline: Pipeline
    metrics: Metrics
    health: HealthTracker
    clock: Clock = system_clock
    deadline_seconds: float | None = None
    transport: httpx2.AsyncBaseTransport | None = None
    access: AccessChecker | None = None
    audit: AuditRecorder | None = None
    granted_scopes: Callable[[], Awaitable[frozenset[str] | None]] | None = None
    #: Resolves ``${...}`` references in ``settings`` for this tenant at connect time, so that
    #: adapters see :class:`~connectors.secrets.Secret` values (set by the Hub).
    resolve_settings: Callable[[Mapping[str, object]], Awaitable[Mapping[str, object]]] | None = (
        None
    )
    #: Runs before every connect: the Hub starts its services (schema, audit) there, so a
    #: connector is never used against a database that was not set up.
    before_connect: Callable[[], Awaitable[None]] | None = None
    #: A token manager given explicitly (tests); adapters use :meth:`token_manager`.
    tokens: TokenManager | None = None
    #: The Hub's token manager, built on first use (it needs the credential store).
    token_provider: Callable[[], TokenManager] | None = None
    #: The stored credential the settings named when the connector connected, and its version
    #: then (``None`` if unreadable): set by the Hub, carried by every operation's audit record.
    credential: tuple[str, int | None] | None = None
    extras: dict[str, object] = field(default_factory=dict)

    def token_manager(self) -> TokenManager:
        """The token manager for OAuth credentials: the explicit one, else the Hub's (persisted in
        the encrypted credential store), else a private in-memory one for this instance."""
        if self.tokens is None:
            if self.token_provider is not None:
                self.tokens = self.token_provider()
            else:
                from connectors.auth.manager import TokenManager
                from connectors.auth.memory import InMemoryLockProvider, InMemoryTokenStore

                self.tokens = TokenManager(
                    InMemoryTokenStore(), InMemoryLockProvider(), clock=self.clock
                )
        return self.tokens


class Connector:
    """Base class of every adapter. Bound to one tenant and one actor.

    Subclasses set ``name`` (the adapter name) and ``version`` (semver), and may set
    ``provider_api_versions`` (the provider API versions they support).
    """

    name: ClassVar[str] = ""
    version: ClassVar[str] = "0.0.0"
    provider_api_versions: ClassVar[tuple[str, ...]] = ()
    #: Rate limits applied to every request of this adapter (in addition to the definition's).
    default_rate_limits: ClassVar[tuple[RateLimit, ...]] = ()

    _operations: ClassVar[dict[str, OperationInfo]] = {}
    #: The (tenant, actor) objects that last passed :class:`CallContext` validation, so later
    #: operations can build their context without repeating it (see ``_new_context``).
    _checked_identity: tuple[str, str] | None = None

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name and not _SEMVER.match(cls.version):
            raise ConfigurationError(
                f"adapter {cls.name!r} declares version {cls.version!r}, which is not semver",
                hint="use MAJOR.MINOR.PATCH, e.g. '1.0.0'",
            )
        ops: dict[str, OperationInfo] = {}
        for base in reversed(cls.__mro__):
            for attr in vars(base).values():
                info = getattr(attr, "__connector_operation__", None)
                if isinstance(info, OperationInfo):
                    ops[info.name] = info
        cls._operations = ops

    def __init__(self, runtime: ConnectorRuntime) -> None:
        self.runtime = runtime
        self.tenant = runtime.tenant
        self.actor = runtime.actor
        self.instance_name = runtime.instance_name
        self.lifecycle = Lifecycle(runtime.instance_name)
        self._http: ConnectorHttpClient | None = None
        self._log = _log.bind(
            connector=runtime.instance_name, tenant=runtime.tenant, actor=runtime.actor
        )

    # --- declared operations --------------------------------------------------------------------

    @classmethod
    def operations(cls) -> Mapping[str, OperationInfo]:
        """Every ``@operation`` of this adapter, by name."""
        return dict(cls._operations)

    @classmethod
    def required_scopes(cls) -> frozenset[str]:
        """The union of every operation's scopes: what a definition should request, no more."""
        return frozenset(s for info in cls._operations.values() for s in info.scopes)

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def state(self) -> State:
        return self.lifecycle.state

    async def connect(self) -> None:
        """Open the connector: create the HTTP client, then run the adapter's ``on_connect``."""
        self.lifecycle.move(State.CONNECTING)
        try:
            if self.runtime.before_connect is not None:
                await self.runtime.before_connect()
            if self.runtime.resolve_settings is not None:
                self.runtime.settings = await self.runtime.resolve_settings(self.runtime.settings)
            await self.on_connect()
        except BaseException:
            self.lifecycle.move(State.FAILED)
            await self._close_http()
            raise
        self.lifecycle.move(State.CONNECTED)

    async def disconnect(self) -> None:
        """Close the connector and release its connections. Idempotent."""
        if self.lifecycle.state in (State.CLOSED, State.CLOSING):
            return
        if self.lifecycle.state is State.CREATED:
            self.lifecycle.move(State.CLOSED)
            return
        self.lifecycle.move(State.CLOSING)
        try:
            await self.on_disconnect()
        finally:
            await self._close_http()
            self.lifecycle.move(State.CLOSED)
            if self.runtime.audit is not None:
                await self.runtime.audit.flush()

    async def on_connect(self) -> None:
        """Adapter hook: authenticate, check versions, warm up. Default: nothing."""

    async def on_disconnect(self) -> None:
        """Adapter hook: release adapter resources. The HTTP client is closed by the base."""

    async def health_check(self) -> Health:
        """Adapter hook: probe the provider. Default: the health observed from recent calls."""
        return self.observed_health()

    def observed_health(self) -> Health:
        """Health derived from recent operations (error rate, latency), without any I/O."""
        snap = self.runtime.health.snapshot()
        return Health.from_checks([HealthCheck.from_tracker("recent_calls", snap)])

    async def __aenter__(self: C) -> C:
        if self.lifecycle.state is not State.CONNECTED:
            await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.disconnect()

    # --- HTTP -----------------------------------------------------------------------------------

    def create_http_client(self) -> ConnectorHttpClient:
        """Adapter hook: build the HTTP client (base URL, auth, classifier). Called once."""
        from connectors.http import ConnectorHttpClient

        return ConnectorHttpClient(
            self.instance_name,
            base_url=str(self.runtime.settings.get("base_url", "")),
            pipeline=self.runtime.pipeline,
            transport=self.runtime.transport,
            clock=self.runtime.clock,
            observer=self._observe_http,
        )

    @property
    def http(self) -> ConnectorHttpClient:
        """The connector's pooled HTTP client (created on first use)."""
        if self._http is None:
            self._http = self.create_http_client()
        return self._http

    async def _close_http(self) -> None:
        if self._http is not None:
            client, self._http = self._http, None
            await client.aclose()

    def _observe_http(
        self, connector: str, tenant: str, operation: str, status_class: str, duration: float
    ) -> None:
        self.runtime.metrics.http_request(connector, tenant, operation, status_class)
        scope = _current_scope.get()
        if scope is not None:
            scope.attempts += 1

    async def request(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool | None = None,
        rate_limits: Sequence[RateLimit] = (),
        **kwargs: Any,
    ) -> httpx2.Response:
        """Send one HTTP request for the running operation, through the resilience pipeline."""
        scope = _current_scope.get()
        if scope is None:
            raise ConfigurationError(
                "request() was called outside an @operation",
                connector=self.instance_name,
                hint="decorate the adapter method with @operation",
            )
        response = await self.http.request(
            method,
            url,
            ctx=scope.ctx,
            operation=scope.info.name,
            idempotent=scope.info.idempotent if idempotent is None else idempotent,
            rate_limits=(*self.default_rate_limits, *rate_limits)
            if rate_limits
            else self.default_rate_limits,
            **kwargs,
        )
        scope.status = response.status_code
        return response

    async def attempt(
        self,
        fn: Callable[[Attempt], Awaitable[R]],
        *,
        idempotent: bool | None = None,
        rate_limits: Sequence[RateLimit] = (),
        enforce_timeout: bool = True,
    ) -> R:
        """Run a non-HTTP call (SMTP, IMAP...) for the running operation through the pipeline.

        ``fn`` receives the :class:`~connectors.resilience.Attempt` (its ``timeout`` is what the
        attempt may take) and must raise typed :mod:`connectors.errors` errors; the pipeline
        retries the retryable ones by the usual rules.
        """
        scope = _current_scope.get()
        if scope is None:
            raise ConfigurationError(
                "attempt() was called outside an @operation",
                connector=self.instance_name,
                hint="decorate the adapter method with @operation",
            )

        async def counted(attempt: Attempt) -> R:
            scope.attempts += 1
            return await fn(attempt)

        return await self.runtime.pipeline.execute(
            counted,
            ctx=scope.ctx,
            operation=scope.info.name,
            idempotent=scope.info.idempotent if idempotent is None else idempotent,
            rate_limits=(*self.default_rate_limits, *rate_limits),
            enforce_timeout=enforce_timeout,
        )

    def call_context(self) -> CallContext:
        """The running operation's context (tenant, actor, request id, deadline)."""
        scope = _current_scope.get()
        if scope is None:
            raise ConfigurationError("no operation is running", connector=self.instance_name)
        return scope.ctx

    def _span_name(self, info: OperationInfo) -> str:
        return f"{self.instance_name}.{info.name}"

    def _span_attrs(self, scope: _Scope) -> dict[str, str]:
        return {
            "connector": self.instance_name,
            "tenant": scope.ctx.tenant,
            "operation": scope.info.name,
            "request_id": scope.ctx.request_id,
        }

    def _new_context(self) -> CallContext:
        rt = self.runtime
        deadline = Deadline.after(rt.deadline_seconds, rt.clock) if rt.deadline_seconds else None
        tenant, actor = self.tenant, self.actor
        checked = self._checked_identity
        if checked is not None and checked[0] is tenant and checked[1] is actor:
            # The same tenant and actor objects passed CallContext's checks before.
            return CallContext._trusted(tenant, actor, new_request_id(), deadline)
        ctx = CallContext(
            tenant=tenant, actor=actor, request_id=new_request_id(), deadline=deadline
        )
        self._checked_identity = (tenant, actor)
        return ctx

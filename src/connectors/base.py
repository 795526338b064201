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

import contextvars
import functools
import inspect
import re
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, field
from types import TracebackType
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Concatenate,
    Final,
    ParamSpec,
    Protocol,
    TypeVar,
    overload,
)

import httpx2

from connectors.clock import Clock, system_clock
from connectors.context import (
    CallContext,
    Deadline,
    new_request_id,
    reset_context,
    set_context,
    use_context,
)
from connectors.errors import (
    AccessDenied,
    BulkheadFull,
    CircuitOpen,
    ConfigurationError,
    ConnectorError,
    ScopeDenied,
)
from connectors.lifecycle import Lifecycle, State
from connectors.observability.health import Health, HealthCheck, HealthTracker
from connectors.observability.logging import get_logger
from connectors.observability.metrics import Metrics
from connectors.observability.tracing import tracing
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
_DEBUG: Final = 10  # logging.DEBUG
_WARNING: Final = 30  # logging.WARNING


class AccessChecker(Protocol):
    """What the operation path needs from access control."""

    async def check(self, actor: str, tenant: str, permission: str) -> None:
        """Return if allowed; raise :class:`~connectors.errors.AccessDenied` otherwise."""
        ...


@dataclass(frozen=True, slots=True)
class OperationOutcome:
    """One finished operation, as the audit layer sees it (never a payload or a secret)."""

    connector: str
    connector_version: str
    adapter: str
    tenant: str
    actor: str
    operation: str
    request_id: str
    outcome: str  # "success" | "failure" | "denied"
    duration: float
    attempts: int
    target: str | None = None
    error_code: str | None = None
    status: int | None = None
    credential_name: str | None = None
    credential_version: int | None = None


class AuditRecorder(Protocol):
    """What the operation path needs from the audit layer: a cheap, non-blocking record, and a
    flush when a connector closes (so no event waits on a loop that is about to end)."""

    def record_operation(self, outcome: OperationOutcome) -> None: ...

    async def flush(self) -> None: ...


@dataclass(frozen=True, slots=True)
class OperationInfo:
    """What ``@operation`` declared about a method."""

    name: str
    idempotent: bool
    scopes: tuple[str, ...]
    permission: str
    audit_target: str | Callable[..., str | None] | None


@dataclass(slots=True)
class _Scope:
    """Mutable per-call state shared by the wrapper, ``request`` and the HTTP observer."""

    ctx: CallContext
    info: OperationInfo
    attempts: int = 0
    status: int | None = None


_current_scope: contextvars.ContextVar[_Scope | None] = contextvars.ContextVar(
    "connectors_operation_scope", default=None
)


def current_operation() -> tuple[CallContext, OperationInfo] | None:
    """The context and declaration of the operation running in this task, if any."""
    scope = _current_scope.get()
    return None if scope is None else (scope.ctx, scope.info)


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


class _OperationDecorator(Protocol):
    """What ``@operation(...)`` returns: keeps the method's exact signature (``ParamSpec``)."""

    @overload
    def __call__(
        self, fn: Callable[Concatenate[C, P], Coroutine[Any, Any, R]]
    ) -> Callable[Concatenate[C, P], Coroutine[Any, Any, R]]: ...

    @overload
    def __call__(
        self, fn: Callable[Concatenate[C, P], AsyncIterator[R]]
    ) -> Callable[Concatenate[C, P], AsyncIterator[R]]: ...


def operation(
    *,
    idempotent: bool,
    scopes: Sequence[str] = (),
    name: str | None = None,
    permission: str = "operation.run",
    audit_target: str | Callable[..., str | None] | None = None,
) -> _OperationDecorator:
    """Declare a connector operation (an ``async def``, or an async generator for streams).

    ``idempotent``: may the operation be retried after an ambiguous failure (the request may have
    been processed)? ``scopes``: the provider scopes the credential must have been granted.
    ``permission``: what the actor's role must allow. ``audit_target``: an argument name (or a
    callable over the call's arguments) that names what the call acts on, for the audit record.

    A streaming operation (``async def ...: yield``) is one operation from the first item to the
    last: one access check, one audit record, one duration.
    """

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        info = OperationInfo(
            name=name or fn.__name__,
            idempotent=idempotent,
            scopes=tuple(scopes),
            permission=permission,
            audit_target=audit_target,
        )
        signature = inspect.signature(fn) if audit_target is not None else None
        if inspect.isasyncgenfunction(fn):
            wrapped: Callable[..., Any] = _wrap_stream(fn, info, signature)
        elif inspect.iscoroutinefunction(fn):
            wrapped = _wrap_call(fn, info, signature)
        else:
            raise TypeError(f"@operation needs an async def or async generator, got {fn!r}")
        wrapped.__connector_operation__ = info  # type: ignore[attr-defined]
        return wrapped

    return decorate


async def _enter(conn: Connector, scope: _Scope) -> None:
    """Access and scope checks, before any network I/O."""
    rt = conn.runtime
    ctx = scope.ctx
    if rt.access is not None:
        await rt.access.check(ctx.actor, ctx.tenant, scope.info.permission)
    if scope.info.scopes and rt.granted_scopes is not None:
        await _check_scopes(conn, scope.info, ctx, rt.granted_scopes)


def _open_scope(conn: Connector, info: OperationInfo) -> _Scope:
    conn.lifecycle.require_connected(info.name)
    parent = _current_scope.get()
    ctx = parent.ctx if parent is not None else conn._new_context()
    return _Scope(ctx, info)


def _contextualise(conn: Connector, scope: _Scope, exc: BaseException) -> None:
    if isinstance(exc, ConnectorError):
        exc.with_context(
            connector=conn.instance_name,
            tenant=scope.ctx.tenant,
            operation=scope.info.name,
            request_id=scope.ctx.request_id,
        )


def _wrap_call(
    fn: Callable[..., Awaitable[R]], info: OperationInfo, signature: inspect.Signature | None
) -> Callable[..., Awaitable[R]]:
    @functools.wraps(fn)
    async def wrapper(self: Connector, /, *args: object, **kwargs: object) -> R:
        scope = _open_scope(self, info)
        token = _current_scope.set(scope)
        ctx_token = set_context(scope.ctx)
        started = self.runtime.clock.monotonic()
        error: BaseException | None = None
        try:
            if tracing.enabled:
                with tracing.span(self._span_name(info), self._span_attrs(scope)):
                    await _enter(self, scope)
                    return await fn(self, *args, **kwargs)
            # Untraced (the default): no span object, no attribute dict.
            await _enter(self, scope)
            return await fn(self, *args, **kwargs)
        except BaseException as exc:
            _contextualise(self, scope, exc)
            error = exc
            raise
        finally:
            reset_context(ctx_token)
            _current_scope.reset(token)
            _finish(self, scope, started, error, signature, args, kwargs)

    return wrapper


def _wrap_stream(
    fn: Callable[..., AsyncGenerator[R, None]],
    info: OperationInfo,
    signature: inspect.Signature | None,
) -> Callable[..., AsyncGenerator[R, None]]:
    @functools.wraps(fn)
    async def wrapper(
        self: Connector, /, *args: object, **kwargs: object
    ) -> AsyncGenerator[R, None]:
        scope = _open_scope(self, info)
        started = self.runtime.clock.monotonic()
        error: BaseException | None = None
        inner = fn(self, *args, **kwargs)
        try:
            # The scope is set around each step only (never across a yield), so the consumer may
            # pull items from different tasks (the sync face does) without breaking contextvars.
            token = _current_scope.set(scope)
            try:
                with use_context(scope.ctx):
                    await _enter(self, scope)
            finally:
                _current_scope.reset(token)
            while True:
                token = _current_scope.set(scope)
                try:
                    with use_context(scope.ctx):
                        item = await inner.__anext__()
                except StopAsyncIteration:
                    break
                finally:
                    _current_scope.reset(token)
                yield item
        except BaseException as exc:
            if not isinstance(exc, GeneratorExit):
                _contextualise(self, scope, exc)
                error = exc
            raise
        finally:
            await inner.aclose()
            _finish(self, scope, started, error, signature, args, kwargs)

    return wrapper


async def _check_scopes(
    conn: Connector,
    info: OperationInfo,
    ctx: CallContext,
    granted_fn: Callable[[], Awaitable[frozenset[str] | None]],
) -> None:
    granted = await granted_fn()
    if granted is None:  # unknown (static API keys): nothing to check
        return
    missing = [s for s in info.scopes if s not in granted]
    if missing:
        raise ScopeDenied(
            f"the credential lacks scope(s) {', '.join(missing)} needed by {info.name}",
            needed=info.scopes,
            provided=tuple(sorted(granted)),
            connector=conn.instance_name,
            tenant=ctx.tenant,
            operation=info.name,
            request_id=ctx.request_id,
            hint="re-connect the app with these scopes",
        )


def _finish(
    conn: Connector,
    scope: _Scope,
    started: float,
    error: BaseException | None,
    signature: inspect.Signature | None,
    args: tuple[object, ...],
    kwargs: Mapping[str, object],
) -> None:
    rt = conn.runtime
    duration = rt.clock.monotonic() - started
    info = scope.info
    ctx = scope.ctx
    if error is None:
        outcome, code = "success", None
    elif isinstance(error, AccessDenied):
        outcome, code = "denied", error.code
    elif isinstance(error, ConnectorError):
        outcome, code = "failure", error.code
    else:
        outcome, code = "failure", type(error).__name__
    rt.metrics.operation(conn.instance_name, ctx.tenant, info.name, outcome, duration)
    rt.health.record(error is None, duration, code)
    if rt.audit is not None:
        rt.audit.record_operation(
            OperationOutcome(
                connector=conn.instance_name,
                connector_version=type(conn).version,
                adapter=type(conn).name,
                tenant=ctx.tenant,
                actor=ctx.actor,
                operation=info.name,
                request_id=ctx.request_id,
                outcome=outcome,
                duration=duration,
                attempts=scope.attempts,
                target=_target(info, signature, conn, args, kwargs),
                error_code=code,
                status=scope.status
                if error is None
                else getattr(error, "status", None) or scope.status,
            )
        )
    logger = conn._log
    if error is None:
        # Checked first so a filtered line (the default) costs no field dict and no rounding.
        if logger.is_enabled_for(_DEBUG):
            logger.debug(
                "operation.success",
                operation=info.name,
                request_id=ctx.request_id,
                attempts=scope.attempts,
                duration_ms=round(duration * 1000, 3),
            )
    else:
        # Fast-fail rejections (an open circuit, a full bulkhead) would flood the log while a
        # provider is down: they go to DEBUG; the circuit's transitions are logged once each.
        fast_fail = isinstance(error, CircuitOpen | BulkheadFull)
        if logger.is_enabled_for(_DEBUG if fast_fail else _WARNING):
            log = logger.debug if fast_fail else logger.warning
            log(
                "operation.failure",
                operation=info.name,
                request_id=ctx.request_id,
                attempts=scope.attempts,
                duration_ms=round(duration * 1000, 3),
                error=code,
                message=str(error),
            )


def _target(
    info: OperationInfo,
    signature: inspect.Signature | None,
    conn: Connector,
    args: tuple[object, ...],
    kwargs: Mapping[str, object],
) -> str | None:
    if info.audit_target is None or signature is None:
        return None
    try:
        bound = signature.bind_partial(conn, *args, **kwargs)
    except TypeError:
        return None
    if callable(info.audit_target):
        try:
            value = info.audit_target(**{k: v for k, v in bound.arguments.items() if k != "self"})
        except Exception:  # an audit-target callable must never break the call
            return None
        return None if value is None else str(value)[:200]
    value = bound.arguments.get(info.audit_target)
    return None if value is None else str(value)[:200]

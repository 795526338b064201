"""The ``@operation`` decorator: the cross-cutting work around every adapter call.

``@operation(idempotent=..., scopes=..., audit_target=...)`` wraps an adapter method (an
``async def``, or an async generator for streams). Per call, in order: lifecycle check, a fresh
:class:`~connectors.context.CallContext` (tenant, actor, request id, deadline), the access check
and the scope check (both before any network I/O), a span when tracing is on, the call itself —
whose requests go through the resilience pipeline — and then metrics, health, the audit record
and the log line. The running call's state (:class:`_Scope`) lives in a context variable that
``Connector.request`` and ``Connector.attempt`` read.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from typing import (
    TYPE_CHECKING,
    Any,
    Concatenate,
    Final,
    NamedTuple,
    ParamSpec,
    Protocol,
    TypeVar,
    overload,
)

from connectors.context import (
    CallContext,
    reset_context,
    set_context,
)
from connectors.errors import (
    AccessDenied,
    BulkheadFull,
    CircuitOpen,
    ConnectorError,
    ScopeDenied,
)
from connectors.observability.logging import get_logger
from connectors.observability.tracing import tracing

if TYPE_CHECKING:
    from connectors.base import Connector

__all__ = ["OperationInfo", "OperationOutcome", "current_operation", "operation"]

P = ParamSpec("P")
R = TypeVar("R")
C = TypeVar("C", bound="Connector")

_log = get_logger("connectors.operation")
_DEBUG: Final = 10  # logging.DEBUG
_WARNING: Final = 30  # logging.WARNING


class OperationOutcome(NamedTuple):
    """One finished operation, as the audit layer sees it (never a payload or a secret).

    A named tuple: immutable like a frozen dataclass, and a third of its cost to build (one is
    built for every operation).
    """

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
            # Plain set/reset (no context manager): this runs for every item of a stream.
            ctx = scope.ctx
            token = _current_scope.set(scope)
            ctx_token = set_context(ctx)
            try:
                await _enter(self, scope)
            finally:
                reset_context(ctx_token)
                _current_scope.reset(token)
            while True:
                token = _current_scope.set(scope)
                ctx_token = set_context(ctx)
                try:
                    item = await inner.__anext__()
                except StopAsyncIteration:
                    break
                finally:
                    reset_context(ctx_token)
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
        credential = rt.credential
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
                credential_name=None if credential is None else credential[0],
                credential_version=None if credential is None else credential[1],
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

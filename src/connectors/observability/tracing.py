"""Optional OpenTelemetry spans around connector operations.

Only ``opentelemetry-api`` is a dependency. When no SDK has installed a tracer provider (the API's
default proxy or no-op provider is in place), :func:`span` returns one shared do-nothing context
manager: the check is made once and cached, so an untraced call pays a function call and an
attribute read. Once an application installs a provider, call :func:`refresh_tracing` (the Hub
does when it starts) so the cached decision is made again.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Final, TypeAlias, cast

from opentelemetry import trace

__all__ = ["AttributeValue", "Tracing", "refresh_tracing", "span", "tracing"]

AttributeValue: TypeAlias = str | int | float | bool
_INSTRUMENTATION: Final = "connectors"


class _NoSpan(AbstractContextManager[None]):
    """A reusable context manager that does nothing (the untraced path)."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


_NO_SPAN: Final = _NoSpan()
_UNRESOLVED: Final = object()


def _is_real(provider: trace.TracerProvider) -> bool:
    return not isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider))


class Tracing:
    """Makes spans through one tracer provider (the global one unless given).

    The provider is looked up on first use and remembered; :meth:`refresh` looks again.
    """

    def __init__(self, provider: trace.TracerProvider | None = None) -> None:
        self._provider = provider
        self._tracer: object = _UNRESOLVED
        self._lock = threading.Lock()

    def _resolve(self) -> trace.Tracer | None:
        with self._lock:
            provider = self._provider if self._provider is not None else trace.get_tracer_provider()
            tracer = provider.get_tracer(_INSTRUMENTATION) if _is_real(provider) else None
            self._tracer = tracer
            return tracer

    @property
    def enabled(self) -> bool:
        """Whether spans are recorded (a real tracer provider is installed)."""
        tracer = self._tracer
        if tracer is _UNRESOLVED:
            tracer = self._resolve()
        return tracer is not None

    def refresh(self) -> None:
        """Forget the cached provider decision (after installing an SDK provider)."""
        with self._lock:
            self._tracer = _UNRESOLVED

    def span(
        self, name: str, attributes: Mapping[str, AttributeValue] | None = None
    ) -> AbstractContextManager[trace.Span | None]:
        """A context manager around a span named ``name``; a shared no-op when untraced.

        The span becomes current for the block, records an exception that escapes it and sets
        an error status.
        """
        tracer = self._tracer
        if tracer is None:
            return _NO_SPAN
        if tracer is _UNRESOLVED:
            tracer = self._resolve()
            if tracer is None:
                return _NO_SPAN
        return cast(trace.Tracer, tracer).start_as_current_span(name, attributes=attributes)


tracing: Final = Tracing()
"""The process-wide :class:`Tracing` over the global OpenTelemetry provider."""


def span(
    name: str, attributes: Mapping[str, AttributeValue] | None = None
) -> AbstractContextManager[trace.Span | None]:
    """A span around the block through the global provider (no-op when none is installed)."""
    return tracing.span(name, attributes)


def refresh_tracing() -> None:
    """Look for the global tracer provider again (call after installing an SDK)."""
    tracing.refresh()

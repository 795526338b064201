"""Tracing: a shared no-op without an SDK, real spans through an installed provider."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import pytest
from opentelemetry import trace
from opentelemetry.util.types import Attributes

from connectors.observability import tracing as tracing_module
from connectors.observability.tracing import Tracing, span


class RecordingTracer(trace.Tracer):
    """A minimal tracer standing in for an SDK: remembers the spans it was asked for."""

    def __init__(self) -> None:
        self.started: list[tuple[str, Mapping[str, object]]] = []
        self.errors: list[BaseException] = []

    def start_span(self, name: str, *args: object, **kwargs: object) -> trace.Span:
        return trace.INVALID_SPAN

    @contextmanager
    def start_as_current_span(  # type: ignore[override]
        self, name: str, *args: object, attributes: Attributes = None, **kwargs: object
    ) -> Iterator[trace.Span]:
        self.started.append((name, dict(attributes or {})))
        try:
            yield trace.INVALID_SPAN
        except BaseException as exc:
            self.errors.append(exc)
            raise


class RecordingProvider(trace.TracerProvider):
    def __init__(self) -> None:
        self.tracer = RecordingTracer()
        self.requested: list[str] = []

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> trace.Tracer:
        self.requested.append(instrumenting_module_name)
        return self.tracer


def test_without_an_sdk_span_is_the_shared_no_op() -> None:
    tracing = Tracing(trace.NoOpTracerProvider())
    first = tracing.span("a", {"tenant": "acme"})
    second = tracing.span("b")
    assert first is second is tracing_module._NO_SPAN
    assert not tracing.enabled
    with first as current:
        assert current is None


def test_global_default_is_a_no_op_in_this_process() -> None:
    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    tracing_module.refresh_tracing()
    assert span("x") is tracing_module._NO_SPAN
    assert not tracing_module.tracing.enabled


def test_no_op_span_lets_exceptions_through() -> None:
    with pytest.raises(ValueError, match="boom"), Tracing(trace.NoOpTracerProvider()).span("a"):
        raise ValueError("boom")


def test_installed_provider_gets_named_spans_with_attributes() -> None:
    provider = RecordingProvider()
    tracing = Tracing(provider)
    assert tracing.enabled
    with tracing.span("salesforce.create", {"tenant": "acme", "attempts": 1}):
        pass
    assert provider.requested == ["connectors"]
    assert provider.tracer.started == [("salesforce.create", {"tenant": "acme", "attempts": 1})]


def test_exceptions_reach_the_span() -> None:
    provider = RecordingProvider()
    with pytest.raises(RuntimeError), Tracing(provider).span("op"):
        raise RuntimeError("x")
    assert [type(e) for e in provider.tracer.errors] == [RuntimeError]


def test_the_provider_decision_is_cached_until_refresh() -> None:
    provider = RecordingProvider()
    tracing = Tracing(provider)
    with tracing.span("one"), tracing.span("two"):
        pass
    assert provider.requested == ["connectors"]  # looked up once
    tracing.refresh()
    with tracing.span("three"):
        pass
    assert provider.requested == ["connectors", "connectors"]


def test_attributes_are_optional() -> None:
    provider = RecordingProvider()
    with Tracing(provider).span("bare"):
        pass
    assert provider.tracer.started == [("bare", {})]

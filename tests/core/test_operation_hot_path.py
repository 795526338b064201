"""The @operation wrapper's shortcuts keep the documented behaviour.

Each call gets a fresh, validated context (the validation is skipped only for the very tenant and
actor objects that passed it), the current context is set and restored without a context
manager, spans are opened only when tracing is on, and log fields are built only when the line
would be emitted.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import pytest
from opentelemetry import trace
from opentelemetry.util.types import Attributes

import connectors.operations as operation_module
from connectors.context import (
    CallContext,
    Deadline,
    current_context,
    new_request_id,
    reset_context,
    set_context,
)
from connectors.observability.logging import configure_logging, reset_logging
from connectors.observability.tracing import Tracing
from connectors.testing.capture import capture_logs
from tests.conftest import make_hub


def run(coro):
    return asyncio.run(coro)


def test_request_ids_are_32_hex_characters_and_unique():
    ids = [new_request_id() for _ in range(2000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)


def test_a_trusted_context_is_the_same_value_as_a_validated_one():
    deadline = Deadline.after(5.0)
    fast = CallContext._trusted("acme", "alice", "r1", deadline)
    slow = CallContext(tenant="acme", actor="alice", request_id="r1", deadline=deadline)
    assert fast == slow
    assert hash(fast) == hash(slow)
    assert repr(fast) == repr(slow)
    assert fast.remaining() == pytest.approx(slow.remaining(), abs=1.0)


def test_set_and_reset_context_nest_like_use_context():
    outer = CallContext(tenant="a")
    inner = CallContext(tenant="b")
    assert current_context() is None
    t1 = set_context(outer)
    t2 = set_context(inner)
    assert current_context() is inner
    reset_context(t2)
    assert current_context() is outer
    reset_context(t1)
    assert current_context() is None


def test_every_operation_gets_its_own_context_and_restores_the_callers(tmp_path):
    hub = make_hub(tmp_path)
    seen: list[CallContext | None] = []

    async def main():
        async with hub.connector("echo", tenant_id="acme", actor="alice") as conn:
            outer = CallContext(tenant="outside")
            token = set_context(outer)
            try:
                for _ in range(3):
                    await conn.echo("x")
                    seen.append(current_context())
                first, second = conn._new_context(), conn._new_context()
            finally:
                reset_context(token)
            return outer, first, second

    outer, first, second = run(main())
    assert seen == [outer, outer, outer]
    assert first.request_id != second.request_id
    assert (first.tenant, first.actor) == ("acme", "alice")


def test_a_changed_tenant_or_actor_is_validated_again(tmp_path):
    hub = make_hub(tmp_path)

    async def main():
        async with hub.connector("echo", tenant_id="acme", actor="alice") as conn:
            conn._new_context()
            conn.actor = ""
            with pytest.raises(ValueError, match="actor"):
                conn._new_context()
            conn.actor = "bob"
            assert conn._new_context().actor == "bob"
            conn.tenant = ""
            with pytest.raises(ValueError, match="tenant"):
                conn._new_context()

    run(main())


class RecordingTracer(trace.Tracer):
    def __init__(self) -> None:
        self.started: list[tuple[str, Mapping[str, object]]] = []

    def start_span(self, name: str, *args: object, **kwargs: object) -> trace.Span:
        return trace.INVALID_SPAN

    @contextmanager
    def start_as_current_span(  # type: ignore[override]
        self, name: str, *args: object, attributes: Attributes = None, **kwargs: object
    ) -> Iterator[trace.Span]:
        self.started.append((name, dict(attributes or {})))
        yield trace.INVALID_SPAN


class RecordingProvider(trace.TracerProvider):
    def __init__(self) -> None:
        self.tracer = RecordingTracer()

    def get_tracer(self, *args: object, **kwargs: object) -> trace.Tracer:
        return self.tracer


def test_an_operation_opens_a_span_when_tracing_is_on(tmp_path, monkeypatch):
    provider = RecordingProvider()
    monkeypatch.setattr(operation_module, "tracing", Tracing(provider))
    hub = make_hub(tmp_path)

    async def main():
        async with hub.connector("echo", tenant_id="acme", actor="alice") as conn:
            await conn.echo("x")

    run(main())
    [(name, attrs)] = provider.tracer.started
    assert name == "echo.echo"
    assert attrs["tenant"] == "acme"
    assert attrs["operation"] == "echo"
    assert attrs["connector"] == "echo"
    assert re.fullmatch(r"[0-9a-f]{32}", str(attrs["request_id"]))


def test_no_span_is_opened_when_tracing_is_off(tmp_path, monkeypatch):
    provider = RecordingProvider()
    off = Tracing(trace.NoOpTracerProvider())
    monkeypatch.setattr(operation_module, "tracing", off)
    hub = make_hub(tmp_path)

    async def main():
        async with hub.connector("echo", tenant_id="acme", actor="alice") as conn:
            assert await conn.echo("x") == "x"

    run(main())
    assert provider.tracer.started == []


def test_success_lines_are_emitted_at_debug_and_skipped_above_it(tmp_path):
    hub = make_hub(tmp_path)

    async def main():
        async with hub.connector("echo", tenant_id="acme", actor="alice") as conn:
            await conn.echo("x")

    with capture_logs(level="DEBUG") as logs:
        run(main())
    [line] = [e for e in logs if e.get("event") == "operation.success"]
    assert line["operation"] == "echo"
    assert line["attempts"] == 1
    assert isinstance(line["duration_ms"], float)

    configure_logging("INFO")
    try:
        with capture_logs(level="INFO") as quiet:
            run(main())
    finally:
        reset_logging()
    assert [e for e in quiet if e.get("event") == "operation.success"] == []

"""The @operation path: lifecycle, access, scopes, context, metrics, health, audit, logs."""

import asyncio

import httpx2
import pytest

from connectors.base import Connector, OperationOutcome, current_operation, operation
from connectors.context import current_context
from connectors.errors import (
    AccessDenied,
    AmbiguousOutcome,
    ConfigurationError,
    LifecycleError,
    ScopeDenied,
    ServiceUnavailable,
)
from connectors.hub import Hub
from connectors.testing.capture import capture_logs
from tests.conftest import EchoConnector, echo_transport, make_hub


class RecordingAudit:
    def __init__(self) -> None:
        self.events: list[OperationOutcome] = []

    def record_operation(self, outcome: OperationOutcome) -> None:
        self.events.append(outcome)

    async def flush(self) -> None:
        self.flushed = True


def run(coro):
    return asyncio.run(coro)


def make(hub: Hub, **runtime_changes) -> Connector:
    conn = hub.connector("echo", tenant_id="acme", actor="alice")
    for key, value in runtime_changes.items():
        setattr(conn.runtime, key, value)
    return conn


def test_operation_runs_through_the_http_client_and_records_everything(hub):
    audit = RecordingAudit()

    async def main():
        conn = make(hub, audit=audit)
        async with conn:
            return await conn.echo("hi")

    assert run(main()) == "hi"
    assert (
        hub.metrics.value(
            "connector_operations_total",
            connector="echo",
            tenant="acme",
            operation="echo",
            outcome="success",
        )
        == 1
    )
    [event] = audit.events
    assert (event.tenant, event.actor, event.operation, event.outcome) == (
        "acme",
        "alice",
        "echo",
        "success",
    )
    assert event.target == "hi"
    assert event.attempts == 1
    assert event.status == 200
    assert event.connector_version == "1.2.3"


def test_operations_require_a_connected_connector(hub):
    conn = make(hub)
    with pytest.raises(LifecycleError, match="needs a connected connector"):
        run(conn.echo("x"))


def test_access_is_checked_before_any_network_io(tmp_path):
    log: list[httpx2.Request] = []
    hub = make_hub(tmp_path, echo_transport(log), grants=[("alice", "other-tenant", "admin")])
    audit = RecordingAudit()

    async def main():
        async with make(hub, audit=audit) as conn:
            await conn.echo("x")

    with pytest.raises(AccessDenied) as info:
        run(main())
    assert log == []
    assert info.value.operation == "echo"
    assert info.value.permission == "operation.run"
    assert audit.events[0].outcome == "denied"


def test_missing_scopes_fail_before_any_network_io(tmp_path):
    log: list[httpx2.Request] = []
    hub = make_hub(tmp_path, echo_transport(log))

    async def granted():
        return frozenset({"other"})

    async def main():
        async with make(hub, granted_scopes=granted) as conn:
            await conn.echo("x")

    with pytest.raises(ScopeDenied) as info:
        run(main())
    assert info.value.missing == ("echo:read",)
    assert log == []


def test_unknown_granted_scopes_are_not_checked(hub):
    async def unknown():
        return None

    async def main():
        async with make(hub, granted_scopes=unknown) as conn:
            return await conn.echo("ok")

    assert run(main()) == "ok"


def test_context_is_visible_inside_the_operation(hub):
    seen = {}

    class Peek(EchoConnector):
        name = "peek"

        @operation(idempotent=True)
        async def look(self) -> None:
            seen["ctx"] = current_context()
            seen["op"] = current_operation()

    hub.registry.register(Peek)
    asyncio.run(hub.services.access.grant("bob", "t1", "editor"))

    async def main():
        async with hub.open("peek", tenant_id="t1", actor="bob") as conn:
            await conn.look()

    run(main())
    assert seen["ctx"].tenant == "t1"
    assert seen["ctx"].actor == "bob"
    assert seen["ctx"].deadline is not None
    assert seen["op"][1].name == "look"


def test_transient_failures_are_retried_by_the_pipeline(no_waits, tmp_path):
    calls = {"n": 0}

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls["n"] += 1
        if calls["n"] < 3:
            return httpx2.Response(503)
        return httpx2.Response(200, json={"echo": "ok"})

    hub = make_hub(tmp_path, httpx2.MockTransport(handler))
    audit = RecordingAudit()

    async def main():
        async with make(hub, audit=audit) as conn:
            return await conn.echo("ok")

    assert run(main()) == "ok"
    assert calls["n"] == 3
    assert audit.events[0].attempts == 3


def test_non_idempotent_call_is_not_retried_after_an_ambiguous_failure(no_waits, tmp_path):
    calls = {"n": 0}

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls["n"] += 1
        raise httpx2.RemoteProtocolError("server closed the connection", request=request)

    hub = make_hub(tmp_path, httpx2.MockTransport(handler))

    async def main():
        async with make(hub) as conn:
            await conn.create("x")

    with pytest.raises(AmbiguousOutcome) as info:
        run(main())
    assert calls["n"] == 1
    assert info.value.operation == "create"
    assert info.value.tenant == "acme"


def test_failures_are_logged_with_context_and_counted(no_waits, tmp_path):
    hub = make_hub(tmp_path, httpx2.MockTransport(lambda r: httpx2.Response(503)))

    async def main():
        async with make(hub) as conn:
            await conn.echo("x")

    with capture_logs() as logs, pytest.raises(ServiceUnavailable):
        run(main())
    failures = [e for e in logs if e.get("event") == "operation.failure"]
    assert failures
    assert failures[0]["tenant"] == "acme"
    assert failures[0]["operation"] == "echo"
    assert failures[0]["request_id"]
    assert (
        hub.metrics.value(
            "connector_operations_total",
            connector="echo",
            tenant="acme",
            operation="echo",
            outcome="failure",
        )
        == 1
    )


def test_streaming_operation_is_one_audited_operation(hub):
    audit = RecordingAudit()

    async def main():
        async with make(hub, audit=audit) as conn:
            return [x async for x in conn.pages(3)]

    assert run(main()) == [0, 1, 2]
    assert len(audit.events) == 1
    assert audit.events[0].attempts == 3


def test_request_outside_an_operation_is_a_clear_error(hub):
    async def main():
        async with make(hub) as conn:
            await conn.request("GET", "/echo")

    with pytest.raises(ConfigurationError, match="outside an @operation"):
        run(main())


def test_operation_rejects_sync_functions():
    with pytest.raises(TypeError, match="async def"):

        class Bad(Connector):
            name = "bad"

            @operation(idempotent=True)
            def sync(self) -> None:  # type: ignore[type-var]
                return None


def test_adapter_version_must_be_semver():
    with pytest.raises(ConfigurationError, match="not semver"):

        class Bad(Connector):
            name = "bad"
            version = "one"


def test_operations_and_required_scopes_are_declared():
    ops = EchoConnector.operations()
    assert set(ops) == {"echo", "create", "pages"}
    assert ops["create"].idempotent is False
    assert EchoConnector.required_scopes() == frozenset({"echo:read"})


def test_health_check_defaults_to_observed_health(hub):
    async def main():
        async with make(hub) as conn:
            await conn.echo("x")
            return await conn.health_check()

    health = run(main())
    assert health.status.value == "healthy"


def test_open_circuit_rejections_do_not_flood_the_log(hub):
    from connectors.errors import CircuitOpen

    async def main():
        async with make(hub) as conn:
            await conn.runtime.pipeline.force_open_breaker("acme")
            for _ in range(3):
                with pytest.raises(CircuitOpen):
                    await conn.echo("x")

    with capture_logs() as logs:
        run(main())
    transitions = [e for e in logs if e.get("event") == "circuit.transition"]
    assert [(e["level"], e["to_state"]) for e in transitions] == [("warning", "forced_open")]
    failures = [e for e in logs if e.get("event") == "operation.failure"]
    assert len(failures) == 3
    assert {e["level"] for e in failures} == {"debug"}

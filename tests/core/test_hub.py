import asyncio

import pytest

from connectors.config.definition import ResilienceOverrides, RetryOverrides
from connectors.config.settings import Settings
from connectors.errors import DefinitionError, UnknownConnector
from connectors.hub import Hub, build_policy


def test_policy_defaults_come_from_the_specification():
    policy = build_policy(Settings.load({}))
    assert policy.retry.max_attempts == 3
    assert policy.retry.base_delay == pytest.approx(0.1)
    assert policy.attempt_timeout == pytest.approx(30.0)
    assert policy.breaker.failure_threshold == 5


def test_policy_precedence_explicit_over_definition_over_environment():
    env = Settings.load({"CONNECTOR_RETRY_MAX_ATTEMPTS": "4", "CONNECTOR_TIMEOUT_MS": "5000"})
    assert build_policy(env).retry.max_attempts == 4
    definition = ResilienceOverrides(retry=RetryOverrides(max_attempts=6))
    assert build_policy(env, definition).retry.max_attempts == 6
    explicit = ResilienceOverrides(retry=RetryOverrides(max_attempts=8))
    policy = build_policy(env, definition, explicit)
    assert policy.retry.max_attempts == 8
    # a field no layer overrides keeps the environment's value
    assert policy.attempt_timeout == pytest.approx(5.0)


def test_from_file_reads_definitions(tmp_path, registry):
    path = tmp_path / "connectors.yaml"
    path.write_text(
        "connectors:\n"
        "  my-echo:\n"
        "    type: echo\n"
        "    settings: {base_url: 'https://echo.test'}\n"
        "    resilience:\n"
        "      retry: {max_attempts: 7}\n"
    )
    hub = Hub.from_file(path, Settings.load({}))
    hub.registry = registry
    conn = hub.connector("my-echo", tenant_id="t")
    assert conn.runtime.settings["base_url"] == "https://echo.test"
    assert conn.runtime.pipeline.policy.retry.max_attempts == 7


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("connectors: [1, 2]", "must map connector names"),
        ("connectors:\n  x:\n    type: echo\n    bogus: 1\n", "bogus"),
        (
            "connectors:\n  x: {type: echo, resilience: {retry: {max_attempts: 0}}}\n",
            "max_attempts",
        ),
        ("connectors: {x: [unclosed\n", "invalid YAML"),
    ],
)
def test_from_file_errors_name_the_file(tmp_path, text, match):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(DefinitionError, match=match) as info:
        Hub.from_file(path, Settings.load({}))
    assert str(path) in str(info.value)


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(DefinitionError, match="cannot read configuration"):
        Hub.from_file(tmp_path / "nope.yaml", Settings.load({}))


def test_unknown_connector_suggests(hub):
    with pytest.raises(UnknownConnector, match="did you mean 'echo'"):
        hub.connector("ech", tenant_id="t")


def test_tenant_is_required(hub):
    with pytest.raises(DefinitionError, match="tenant_id"):
        hub.connector("echo", tenant_id="")


def test_connectors_of_different_tenants_share_a_pipeline_but_not_state(hub):
    a = hub.connector("echo", tenant_id="a")
    b = hub.connector("echo", tenant_id="b")
    assert a.runtime.pipeline is b.runtime.pipeline
    assert a.runtime.health is not b.runtime.health


def test_open_always_disconnects(hub):
    held = []

    async def main():
        async with hub.open("echo", tenant_id="t") as conn:
            held.append(conn)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        asyncio.run(main())
    assert held[0].state.value == "closed"


def test_default_hub_uses_connector_config(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text("connectors:\n  e:\n    type: echo\n")
    monkeypatch.setenv("CONNECTOR_CONFIG", str(path))
    Hub.set_default(None)
    try:
        assert "e" in Hub.default().definitions
    finally:
        Hub.set_default(None)


def test_redis_state_backend_is_picked_from_settings(tmp_path):
    from connectors.state.redis import RedisStateBackend

    settings = Settings.load(
        {
            "CONNECTOR_STATE_BACKEND": "redis",
            "CONNECTOR_REDIS_URL": "redis://127.0.0.1:1/0",
            "CONNECTOR_STATE_ON_UNAVAILABLE": "fail_closed",
        },
        data_dir=tmp_path,
    )
    hub = Hub(settings)
    assert isinstance(hub.state, RedisStateBackend)
    asyncio.run(hub.aclose())


def test_each_event_loop_has_its_own_audit_writer_and_a_closed_one_is_not_reused(hub):
    services = hub.services

    async def writers():
        first = services.audit
        assert services.audit is first  # asked again on the same loop: the same writer
        await services.close()
        second = services.audit  # closed, so a new one
        assert second is not first
        await services.close()
        return first

    one = asyncio.run(writers())
    two = asyncio.run(writers())
    assert one is not two  # another loop, another writer


def test_an_operation_whose_audit_event_is_invalid_returns_and_the_rejection_is_logged(tmp_path):
    from connectors.audit.query import AuditQuery, list_events
    from connectors.testing.capture import capture_logs
    from tests.conftest import make_hub

    actor = "a" * 300  # longer than an audit record holds (roles refuse it: access is off)
    hub = make_hub(tmp_path, grants=(), enforce_access=False)

    async def main():
        async with hub.open("echo", tenant_id="acme", actor=actor) as conn:
            assert await conn.echo("hi") == "hi"  # the audit record is built later
        async with hub.open("echo", tenant_id="acme", actor="alice") as conn:
            assert await conn.echo("ok") == "ok"
        await hub.services.flush()
        stats = hub.services.audit.stats()
        page = await list_events(hub.services.database, AuditQuery(tenant="acme"))
        await hub.services.close()
        return stats, page

    with capture_logs() as logs:
        stats, page = asyncio.run(main())
    assert (stats.recorded, stats.delivered, stats.rejected) == (2, 2, 1)
    assert [e.event.actor for e in page.events if e.event.kind == "operation"] == ["alice"]
    invalid = [e for e in logs if e.get("event") == "audit.event_invalid"]
    assert len(invalid) == 1
    assert invalid[0]["error"] == "ValueError"
    assert "actor" in invalid[0]["message"]


def _dev_hub(tmp_path):
    """An echo Hub whose credential store works (dev mode: a local key file)."""
    from connectors.registry import AdapterRegistry
    from tests.conftest import EchoConnector, echo_transport

    registry = AdapterRegistry(discover=False, builtins={})
    registry.register(EchoConnector)
    return Hub(
        Settings.load({}, data_dir=tmp_path / "data", dev_mode=True),
        registry=registry,
        transports={"echo": echo_transport()},
        enforce_access=False,
    )


def test_operation_audit_records_name_the_stored_credential_and_its_version(tmp_path):
    from connectors.audit.query import AuditQuery, list_events

    hub = _dev_hub(tmp_path)
    keyed = {"api_key": "${secret:echo-key#token}", "region": "eu"}

    async def run(settings):
        async with hub.open("echo", tenant_id="acme", actor="alice", settings=settings) as conn:
            await conn.echo("hi")

    async def main():
        await hub.start()
        store = hub.services.credentials
        await store.put("acme", "echo-key", {"token": "first-value"}, actor="alice")
        await run(keyed)
        await store.put("acme", "echo-key", {"token": "second-value"}, actor="alice")
        await run(keyed)
        await run({"region": "eu"})  # names no stored credential
        await hub.services.flush()
        page = await list_events(hub.services.database, AuditQuery(tenant="acme"))
        await hub.services.close()
        return [e.event for e in reversed(page.events) if e.event.kind == "operation"]

    events = asyncio.run(main())
    assert [(e.credential_name, e.credential_version) for e in events] == [
        ("echo-key", 1),
        ("echo-key", 2),
        (None, None),
    ]
    assert not any("-value" in repr(e.to_dict()) for e in events)  # never the value


def test_the_credential_in_use_is_the_oauth_one_else_the_first_stored_reference(tmp_path):
    services = _dev_hub(tmp_path).services

    async def main():
        await services.start()
        await services.credentials.put("acme", "b", {"value": "x"}, actor="alice")
        found = [
            await services.credential_in_use(
                "acme", {"oauth_credential": "sf", "k": "${secret:b}"}
            ),
            await services.credential_in_use(
                "acme", {"url": "https://x/${env:HOME}", "auth": [{"k": "${secret:b#f}"}]}
            ),
            await services.credential_in_use("acme", {"k": "${env:HOME}", "bad": "${secret:"}),
        ]
        await services.close()
        return found

    assert asyncio.run(main()) == [("sf", None), ("b", 1), None]

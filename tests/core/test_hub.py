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

"""Settings: defaults, parsing of every CONNECTOR_* variable, precedence and clear errors."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.config import InvalidSettings, Settings
from connectors.errors import InvalidSetting
from connectors.secrets import Secret


def test_defaults_match_the_specification() -> None:
    s = Settings.load({})
    assert s.retry_max_attempts == 3
    assert s.retry_base_delay_ms == 100
    assert s.retry_max_delay_ms == 10_000
    assert s.timeout_ms == 30_000
    assert s.deadline_ms == 120_000
    assert s.circuit_breaker_threshold == 5
    assert s.circuit_breaker_reset_ms == 30_000
    assert s.rate_limit_rps is None
    assert s.rate_limit_burst == 1
    assert s.bulkhead_max_concurrent == 50
    assert s.bulkhead_max_queue == 100
    assert s.data_dir == Path("./.connectors")
    assert s.database_url is None
    assert s.state_backend == "memory"
    assert s.redis_url is None
    assert s.config is None
    assert s.master_keys is None
    assert s.dev_mode is False
    assert s.log_level == "INFO"
    assert s.log_format == "json"
    assert s.metrics_tenant_label == "keep"


@pytest.mark.parametrize(
    ("variable", "raw", "field", "expected"),
    [
        ("CONNECTOR_RETRY_MAX_ATTEMPTS", "7", "retry_max_attempts", 7),
        ("CONNECTOR_RETRY_BASE_DELAY_MS", "0", "retry_base_delay_ms", 0),
        ("CONNECTOR_RETRY_MAX_DELAY_MS", "20000", "retry_max_delay_ms", 20_000),
        ("CONNECTOR_TIMEOUT_MS", "1500", "timeout_ms", 1500),
        ("CONNECTOR_DEADLINE_MS", "86400000", "deadline_ms", 86_400_000),
        ("CONNECTOR_CIRCUIT_BREAKER_THRESHOLD", "10000", "circuit_breaker_threshold", 10_000),
        ("CONNECTOR_CIRCUIT_BREAKER_RESET_MS", "1", "circuit_breaker_reset_ms", 1),
        ("CONNECTOR_RATE_LIMIT_RPS", "2.5", "rate_limit_rps", 2.5),
        ("CONNECTOR_RATE_LIMIT_BURST", "20", "rate_limit_burst", 20),
        ("CONNECTOR_BULKHEAD_MAX_CONCURRENT", "100000", "bulkhead_max_concurrent", 100_000),
        ("CONNECTOR_BULKHEAD_MAX_QUEUE", "0", "bulkhead_max_queue", 0),
        ("CONNECTOR_DATA_DIR", "/var/lib/connectors", "data_dir", Path("/var/lib/connectors")),
        (
            "CONNECTOR_DATABASE_URL",
            "postgresql+asyncpg://db/connectors",
            "database_url",
            "postgresql+asyncpg://db/connectors",
        ),
        (
            "CONNECTOR_REDIS_URL",
            "redis://127.0.0.1:6379/0",
            "redis_url",
            "redis://127.0.0.1:6379/0",
        ),
        ("CONNECTOR_CONFIG", "/etc/connectors.yaml", "config", Path("/etc/connectors.yaml")),
        ("CONNECTOR_DEV_MODE", "true", "dev_mode", True),
        ("CONNECTOR_DEV_MODE", "0", "dev_mode", False),
        ("CONNECTOR_LOG_LEVEL", "debug", "log_level", "DEBUG"),
        ("CONNECTOR_LOG_LEVEL", "WARNING", "log_level", "WARNING"),
        ("CONNECTOR_LOG_FORMAT", "Console", "log_format", "console"),
        ("CONNECTOR_METRICS_TENANT_LABEL", "hash", "metrics_tenant_label", "hash"),
        ("CONNECTOR_METRICS_TENANT_LABEL", "drop", "metrics_tenant_label", "drop"),
    ],
)
def test_each_variable_is_parsed(variable: str, raw: str, field: str, expected: object) -> None:
    assert getattr(Settings.load({variable: raw}), field) == expected


def test_state_backend_redis_with_url() -> None:
    s = Settings.load(
        {"CONNECTOR_STATE_BACKEND": "REDIS", "CONNECTOR_REDIS_URL": "redis://127.0.0.1/1"}
    )
    assert s.state_backend == "redis"


def test_master_keys_become_a_secret_never_shown() -> None:
    s = Settings.load({"CONNECTOR_MASTER_KEYS": "k1-very-secret-material"})
    assert isinstance(s.master_keys, Secret)
    assert s.master_keys.reveal() == "k1-very-secret-material"
    assert "very-secret" not in repr(s)
    assert "very-secret" not in str(s.model_dump())


def test_variable_names_are_case_insensitive() -> None:
    assert Settings.load({"connector_retry_max_attempts": "9"}).retry_max_attempts == 9


def test_empty_variable_means_default() -> None:
    s = Settings.load({"CONNECTOR_RATE_LIMIT_RPS": "", "CONNECTOR_TIMEOUT_MS": ""})
    assert s.rate_limit_rps is None
    assert s.timeout_ms == 30_000


def test_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTOR_RETRY_MAX_ATTEMPTS", "4")
    assert Settings.load().retry_max_attempts == 4


def test_explicit_overrides_win_over_environment_over_defaults() -> None:
    env = {"CONNECTOR_TIMEOUT_MS": "2000", "CONNECTOR_RETRY_MAX_ATTEMPTS": "6"}
    s = Settings.load(env, timeout_ms=500)
    assert s.timeout_ms == 500  # explicit
    assert s.retry_max_attempts == 6  # environment
    assert s.deadline_ms == 120_000  # default


def test_given_mapping_replaces_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTOR_RETRY_MAX_ATTEMPTS", "4")
    assert Settings.load({}).retry_max_attempts == 3


def test_settings_are_frozen() -> None:
    s = Settings.load({})
    with pytest.raises(pydantic.ValidationError):
        s.retry_max_attempts = 5  # type: ignore[misc]


def test_seconds_helpers_and_database_default() -> None:
    s = Settings.load({"CONNECTOR_DATA_DIR": "/tmp/x"})
    assert s.timeout == 30.0
    assert s.deadline == 120.0
    assert s.retry_base_delay == 0.1
    assert s.retry_max_delay == 10.0
    assert s.circuit_breaker_reset == 30.0
    assert s.effective_database_url() == "sqlite+aiosqlite:////tmp/x/connectors.db"
    url = "postgresql+asyncpg://h/db"
    assert Settings.load({"CONNECTOR_DATABASE_URL": url}).effective_database_url() == url


# --- invalid values -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "raw", "accepted"),
    [
        ("CONNECTOR_RETRY_MAX_ATTEMPTS", "three", "an integer from 1 to 100"),
        ("CONNECTOR_RETRY_MAX_ATTEMPTS", "0", "an integer from 1 to 100"),
        ("CONNECTOR_RETRY_MAX_ATTEMPTS", "101", "an integer from 1 to 100"),
        ("CONNECTOR_RETRY_MAX_ATTEMPTS", "2.5", "an integer from 1 to 100"),
        ("CONNECTOR_RETRY_BASE_DELAY_MS", "-1", "an integer from 0 to 600000"),
        ("CONNECTOR_TIMEOUT_MS", "0", "an integer from 1 to 3600000"),
        ("CONNECTOR_DEADLINE_MS", "86400001", "an integer from 1 to 86400000"),
        ("CONNECTOR_CIRCUIT_BREAKER_THRESHOLD", "x", "an integer from 1 to 10000"),
        ("CONNECTOR_CIRCUIT_BREAKER_RESET_MS", "0", "an integer from 1 to 86400000"),
        ("CONNECTOR_RATE_LIMIT_RPS", "0", "a number greater than 0, or unset for none"),
        ("CONNECTOR_RATE_LIMIT_RPS", "fast", "a number greater than 0"),
        ("CONNECTOR_RATE_LIMIT_BURST", "0", "an integer of at least 1"),
        ("CONNECTOR_BULKHEAD_MAX_CONCURRENT", "0", "an integer from 1 to 100000"),
        ("CONNECTOR_BULKHEAD_MAX_QUEUE", "-5", "an integer from 0 to 1000000"),
        ("CONNECTOR_STATE_BACKEND", "etcd", "one of 'memory', 'redis'"),
        ("CONNECTOR_LOG_LEVEL", "verbose", "one of 'DEBUG', 'INFO', 'WARNING', 'ERROR'"),
        ("CONNECTOR_LOG_FORMAT", "xml", "one of 'json', 'console'"),
        ("CONNECTOR_METRICS_TENANT_LABEL", "mask", "one of 'keep', 'drop', 'hash'"),
        ("CONNECTOR_DEV_MODE", "maybe", "a boolean"),
        ("CONNECTOR_DATABASE_URL", "mysql://h/db", "starting with sqlite or postgresql"),
        ("CONNECTOR_REDIS_URL", "http://h", "a redis://, rediss:// or unix:// URL"),
    ],
)
def test_invalid_values_name_the_variable_and_the_accepted_range(
    variable: str, raw: str, accepted: str
) -> None:
    with pytest.raises(InvalidSetting) as info:
        Settings.load({variable: raw})
    message = str(info.value)
    assert variable in message
    assert accepted in message
    assert info.value.setting == variable
    assert not isinstance(info.value, pydantic.ValidationError)


def test_max_delay_below_base_delay_is_rejected() -> None:
    with pytest.raises(InvalidSetting) as info:
        Settings.load(
            {"CONNECTOR_RETRY_BASE_DELAY_MS": "500", "CONNECTOR_RETRY_MAX_DELAY_MS": "100"}
        )
    assert "CONNECTOR_RETRY_MAX_DELAY_MS" in str(info.value)
    assert "not less than CONNECTOR_RETRY_BASE_DELAY_MS (500)" in str(info.value)


def test_redis_backend_requires_a_redis_url() -> None:
    with pytest.raises(InvalidSetting, match="CONNECTOR_REDIS_URL"):
        Settings.load({"CONNECTOR_STATE_BACKEND": "redis"})


def test_several_invalid_values_are_all_listed() -> None:
    env = {
        "CONNECTOR_RETRY_MAX_ATTEMPTS": "0",
        "CONNECTOR_LOG_FORMAT": "xml",
        "CONNECTOR_TIMEOUT_MS": "soon",
    }
    with pytest.raises(InvalidSettings) as info:
        Settings.load(env)
    assert isinstance(info.value, InvalidSetting)
    message = str(info.value)
    for variable in env:
        assert variable in message
    assert {p.setting for p in info.value.problems} == set(env)


def test_invalid_explicit_override_names_the_argument() -> None:
    with pytest.raises(InvalidSetting, match=r"retry_max_attempts.*an integer from 1 to 100"):
        Settings.load({}, retry_max_attempts=500)


def test_unknown_override_is_an_invalid_setting_with_a_suggestion() -> None:
    with pytest.raises(InvalidSetting, match="did you mean retry_max_attempts"):
        Settings.load({}, retry_max_attempt=3)


def test_errors_never_echo_secret_values() -> None:
    with pytest.raises(InvalidSetting) as info:
        Settings.load({}, master_keys=987654321)
    assert "987654321" not in str(info.value)
    assert "<hidden>" in str(info.value)


def test_errors_mask_passwords_in_urls() -> None:
    with pytest.raises(InvalidSetting) as info:
        Settings.load({"CONNECTOR_REDIS_URL": "http://user:hunter2pw@h:6379"})
    assert "hunter2pw" not in str(info.value)
    assert "user:***@h" in str(info.value)


@given(st.integers(min_value=1, max_value=100))
def test_every_in_range_attempt_count_parses(value: int) -> None:
    assert Settings.load({"CONNECTOR_RETRY_MAX_ATTEMPTS": str(value)}).retry_max_attempts == value


@given(st.one_of(st.integers(max_value=0), st.integers(min_value=101)))
def test_every_out_of_range_attempt_count_fails_clearly(value: int) -> None:
    with pytest.raises(InvalidSetting, match=r"CONNECTOR_RETRY_MAX_ATTEMPTS.*from 1 to 100"):
        Settings.load({"CONNECTOR_RETRY_MAX_ATTEMPTS": str(value)})


# --- unknown variables ----------------------------------------------------------------------------


def test_unknown_variables_are_listed_with_suggestions() -> None:
    env = {
        "CONNECTOR_RETRY_MAX_ATEMPTS": "3",
        "CONNECTOR_TIMEOUT_MS": "10",
        "CONNECTOR_ZZZ_UNRELATED": "1",
        "PATH": "/usr/bin",
    }
    assert Settings.unknown_variables(env) == {
        "CONNECTOR_RETRY_MAX_ATEMPTS": "CONNECTOR_RETRY_MAX_ATTEMPTS",
        "CONNECTOR_ZZZ_UNRELATED": None,
    }


def test_unknown_variables_do_not_fail_loading() -> None:
    assert Settings.load({"CONNECTOR_TIMOUT_MS": "5"}).timeout_ms == 30_000


def test_accepted_describes_fields_in_words() -> None:
    assert Settings.accepted("timeout_ms") == "an integer from 1 to 3600000"
    assert Settings.env_var("timeout_ms") == "CONNECTOR_TIMEOUT_MS"


def test_server_secret_is_a_secret_of_at_least_32_characters() -> None:
    value = "s" * 40
    settings = Settings.load({"CONNECTOR_SERVER_SECRET": value})
    assert settings.server_secret is not None
    assert settings.server_secret.reveal() == value
    assert value not in repr(settings)
    with pytest.raises(InvalidSetting, match="CONNECTOR_SERVER_SECRET") as info:
        Settings.load({"CONNECTOR_SERVER_SECRET": "short-secret"})
    assert "short-secret" not in str(info.value)

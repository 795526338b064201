"""Settings validation: one typed value, clear errors naming the setting."""

from __future__ import annotations

import pytest

from connectors.adapters.slack.settings import DEFAULT_BASE_URL, SlackSettings
from connectors.errors import ConfigurationError, InvalidSetting
from connectors.secrets import Secret


def test_defaults_with_a_static_token():
    settings = SlackSettings.from_mapping({"token": Secret("xoxb-1")})
    assert settings.base_url == DEFAULT_BASE_URL
    assert settings.page_size == 200
    assert settings.auto_join is False
    assert settings.limits.enabled
    assert settings.limits.scale == 1.0
    assert settings.token_url == "https://slack.com/api/oauth.v2.access"


def test_a_plain_string_token_becomes_a_secret():
    settings = SlackSettings.from_mapping({"token": "xoxb-plain-token"})
    assert isinstance(settings.token, Secret)
    assert "xoxb-plain-token" not in repr(settings)


def test_exactly_one_of_token_and_oauth_credential():
    with pytest.raises(ConfigurationError, match="needs a bot token"):
        SlackSettings.from_mapping({})
    with pytest.raises(ConfigurationError, match="not both"):
        SlackSettings.from_mapping({"token": Secret("x"), "oauth_credential": "c"})


def test_values_are_parsed_and_checked():
    settings = SlackSettings.from_mapping(
        {
            "oauth_credential": "slack-bot",
            "base_url": "http://127.0.0.1:9/api",
            "auto_join": "true",
            "page_size": "50",
            "rate_scale": 10,
            "post_message_rate": 2,
            "install_scopes": "chat:write, files:write",
            "marketplace_app": False,
        }
    )
    assert settings.base_url == "http://127.0.0.1:9/api/"
    assert settings.auto_join is True
    assert settings.page_size == 50
    assert settings.install_scopes == ("chat:write", "files:write")
    assert settings.limits.scale == 10
    assert settings.limits.post_message_rate == 2
    assert settings.limits.marketplace_app is False


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("base_url", "slack.com/api"),
        ("page_size", 0),
        ("page_size", 1001),
        ("rate_scale", -1),
        ("auto_join", "maybe"),
        ("post_message_burst", 0.5),
        ("special_per_minute", ["auth.test"]),
    ],
)
def test_bad_values_name_the_setting(key, value):
    with pytest.raises(InvalidSetting) as info:
        SlackSettings.from_mapping({"token": Secret("xoxb-1"), key: value})
    assert key.split(".")[0] in str(info.value)


def test_a_secret_setting_of_the_wrong_type_hides_its_value():
    with pytest.raises(InvalidSetting) as info:
        SlackSettings.from_mapping({"token": 12345678})
    assert "12345678" not in str(info.value)

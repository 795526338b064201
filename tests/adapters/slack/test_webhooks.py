"""Incoming webhooks: plain-text answers as typed errors; the URL is a secret reference."""

from __future__ import annotations

import httpx2
import pytest

from connectors.adapters.slack.webhooks import WebhookClassifier, resolve_webhook_url
from connectors.errors import (
    AuthenticationFailed,
    AuthorizationError,
    ConfigurationError,
    Conflict,
    InvalidRequest,
    InvalidSetting,
    NotFound,
    RateLimited,
    ServiceUnavailable,
)
from connectors.secrets import Secret


def _classify(status: int, text: str, headers=None):
    request = httpx2.Request("POST", "https://hooks.slack.com/services/T1/B1/secretpart")
    response = httpx2.Response(status, text=text, headers=headers or {}, request=request)
    return WebhookClassifier().classify(response)


def test_ok_is_a_success():
    assert _classify(200, "ok") is None


@pytest.mark.parametrize(
    ("status", "text", "cls"),
    [
        (400, "invalid_payload", InvalidRequest),
        (400, "no_text", InvalidRequest),
        (400, "user_not_found", NotFound),
        (403, "invalid_token", AuthenticationFailed),
        (403, "action_prohibited", AuthorizationError),
        (404, "no_service", NotFound),
        (404, "channel_not_found", NotFound),
        (410, "channel_is_archived", Conflict),
        (500, "rollup_error", ServiceUnavailable),
    ],
)
def test_plain_text_codes_map_to_typed_errors(status, text, cls):
    error = _classify(status, text)
    assert type(error) is cls
    assert error.provider_code == text
    assert "secretpart" not in str(error)


def test_a_429_is_rate_limited_and_safe_to_retry():
    error = _classify(429, "rate_limited", {"Retry-After": "1"})
    assert isinstance(error, RateLimited)
    assert error.retry_after == 1.0
    assert error.request_sent is False


def test_a_free_form_body_is_not_echoed():
    error = _classify(400, "<html>token=xoxb-123 oops</html>")
    assert error.provider_code is None
    assert "xoxb" not in str(error)


def test_urls_come_from_secrets_or_settings_keys_only():
    url = Secret("https://hooks.slack.com/services/T/B/x")
    assert resolve_webhook_url(url, {}) is url
    resolved = resolve_webhook_url("hook", {"hook": "https://hooks.slack.com/services/T/B/y"})
    assert isinstance(resolved, Secret)
    with pytest.raises(ConfigurationError):
        resolve_webhook_url("https://hooks.slack.com/services/T/B/x", {})
    with pytest.raises(ConfigurationError):
        resolve_webhook_url("missing", {})
    with pytest.raises(InvalidSetting) as info:
        resolve_webhook_url("hook", {"hook": Secret("ftp://nope/secret-value")})
    assert "secret-value" not in str(info.value)

"""Slack's ok:false envelope and 429s as typed errors (pure: responses built by hand)."""

from __future__ import annotations

import json

import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.adapters.slack.classify import SlackClassifier, error_for, slack_body
from connectors.errors import (
    AuthenticationFailed,
    AuthorizationError,
    Conflict,
    ConnectorError,
    InvalidRequest,
    NotFound,
    PermanentError,
    RateLimited,
    ReauthorizationRequired,
    ScopeDenied,
    ServiceUnavailable,
)


def _response(body: object, status: int = 200, headers=None, method="chat.postMessage"):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = httpx2.Request("POST", f"https://slack.com/api/{method}")
    return httpx2.Response(status, content=content, headers=headers or {}, request=request)


def _classify(body, status=200, headers=None, method="chat.postMessage"):
    return SlackClassifier().classify(_response(body, status, headers, method))


def test_ok_true_is_a_success():
    assert _classify({"ok": True, "ts": "1.2"}) is None


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        ("invalid_auth", AuthenticationFailed),
        ("not_authed", AuthenticationFailed),
        ("token_expired", AuthenticationFailed),
        ("token_revoked", ReauthorizationRequired),
        ("ratelimited", RateLimited),
        ("channel_not_found", NotFound),
        ("user_not_found", NotFound),
        ("users_not_found", NotFound),
        ("message_not_found", NotFound),
        ("not_in_channel", AuthorizationError),
        ("invalid_arguments", InvalidRequest),
        ("invalid_blocks", InvalidRequest),
        ("msg_too_long", InvalidRequest),
        ("is_archived", Conflict),
        ("fatal_error", ServiceUnavailable),
        ("internal_error", ServiceUnavailable),
        ("service_unavailable", ServiceUnavailable),
        ("something_new", PermanentError),
    ],
)
def test_error_codes_map_to_typed_errors(code, cls):
    error = _classify({"ok": False, "error": code})
    assert type(error) is cls
    assert error.provider_code == code
    assert f"Slack chat.postMessage failed: {code}" in str(error)


def test_missing_scope_carries_needed_and_provided():
    error = _classify(
        {
            "ok": False,
            "error": "missing_scope",
            "needed": "users:read.email",
            "provided": "chat:write,users:read",
        }
    )
    assert isinstance(error, ScopeDenied)
    assert error.needed == ("users:read.email",)
    assert error.provided == ("chat:write", "users:read")


def test_a_429_is_rate_limited_with_retry_after_and_marked_not_processed():
    error = _classify({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": "7"})
    assert isinstance(error, RateLimited)
    assert error.retry_after == 7.0
    assert error.status == 429
    assert error.request_sent is False  # so chat.postMessage may be retried safely


def test_a_429_without_a_json_body_is_still_rate_limited():
    error = _classify(b"Too many requests", 429, {"Retry-After": "0.250"})
    assert isinstance(error, RateLimited)
    assert error.retry_after == 0.25


def test_invalid_request_fields_come_from_response_metadata_messages():
    error = _classify(
        {
            "ok": False,
            "error": "invalid_blocks",
            "response_metadata": {
                "messages": ["[ERROR] missing required field: type [json-pointer:/blocks/0]"]
            },
        }
    )
    assert isinstance(error, InvalidRequest)
    assert error.fields[0].field == "/blocks/0"
    assert "missing required field: type" in error.fields[0].message


def test_a_non_json_200_is_service_unavailable():
    error = _classify(b"<html>Server Error | Slack</html>")
    assert isinstance(error, ServiceUnavailable)


def test_5xx_answers_use_the_default_table():
    assert isinstance(_classify(b"oops", 503), ServiceUnavailable)


def test_accepted_codes_are_successes_for_that_request_only():
    classifier = SlackClassifier()
    reacting = classifier.accepting("already_reacted")
    response = _response({"ok": False, "error": "already_reacted"}, method="reactions.add")
    assert reacting.classify(response) is None
    assert isinstance(classifier.classify(response), Conflict)


def test_the_parsed_body_is_kept_on_the_response():
    response = _response({"ok": True, "x": 1})
    first = slack_body(response)
    assert first is slack_body(response)


def test_token_echoes_in_error_messages_are_redacted():
    token = "xoxb-1234567890-abcdefghijklmnop"
    error = _classify(
        {
            "ok": False,
            "error": "invalid_arguments",
            "response_metadata": {"messages": [f"[ERROR] bad token {token}"]},
        }
    )
    assert token not in str(error)


@given(
    code=st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=30),
    extra=st.dictionaries(st.text(max_size=10), st.text(max_size=20), max_size=3),
)
def test_every_error_code_becomes_a_connector_error(code, extra):
    body = {**extra, "ok": False, "error": code}
    error = error_for(code, body, method="x.y")
    assert isinstance(error, ConnectorError)
    assert error.provider_code == code

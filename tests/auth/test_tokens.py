"""TokenSet.from_response: provider shapes, expiry arithmetic, storage round trip, masking."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.auth import StoredToken, TokenSet
from connectors.auth.tokens import parse_scopes
from connectors.errors import AuthenticationFailed
from connectors.secrets import Secret

NOW = 1_700_000_000.0

SALESFORCE = {
    "id": "https://login.salesforce.com/id/00Dx0000000BV7z/005x00000012Q9P",
    "issued_at": "1278448832702",
    "instance_url": "https://na1.salesforce.com",
    "signature": "0CmxinZir53Yex7nE0TD+zMpvIWYGb/bdJh6XfOH6EQ=",
    "access_token": "00Dx0000000BV7z!AR8AQAxo9U-sf-x9",
    "scope": "web api",
    "token_type": "Bearer",
}

SLACK = {
    "ok": True,
    "app_id": "A111",
    "authed_user": {"id": "W111", "access_token": "xoxe.xoxp-1-user-x9", "refresh_token": "r"},
    "scope": "app_mentions:read,chat:write,commands",
    "token_type": "bot",
    "access_token": "xoxe.xoxb-1-yyy-x9",
    "bot_user_id": "UB111",
    "refresh_token": "xoxe-1-yyy-x9",
    "expires_in": 43201,
    "team": {"id": "T111", "name": "Testing Workspace"},
}


def test_salesforce_response_without_expires_in_has_unknown_expiry_and_ms_issued_at():
    token = TokenSet.from_response(SALESFORCE, NOW)
    assert token.expires_at is None
    assert token.issued_at == pytest.approx(1278448832.702)
    assert token.instance_url == "https://na1.salesforce.com"
    assert token.scopes == {"web", "api"}
    assert token.refresh_token is None
    assert not token.expires_within(10**9, NOW)
    assert token.extra["id"] == SALESFORCE["id"]
    assert "signature" not in token.extra


def test_slack_response_with_comma_scopes_and_rotation_fields():
    token = TokenSet.from_response(SLACK, NOW)
    assert token.access_token.reveal() == "xoxe.xoxb-1-yyy-x9"
    assert token.refresh_token is not None
    assert token.refresh_token.reveal() == "xoxe-1-yyy-x9"
    assert token.expires_at == NOW + 43201
    assert token.scopes == {"app_mentions:read", "chat:write", "commands"}
    assert token.token_type == "bot"
    assert token.extra["team"] == {"id": "T111", "name": "Testing Workspace"}
    # Nested credentials (the user token) never reach ``extra``.
    assert token.extra["authed_user"] == {"id": "W111"}
    assert "ok" not in token.extra


def test_refresh_response_keeps_omitted_refresh_token_scope_and_instance_url():
    previous = TokenSet.from_response(
        {**SALESFORCE, "refresh_token": "old-refresh-x9", "scope": "api refresh_token"}, NOW
    )
    renewed = TokenSet.from_response({"access_token": "new-access-x9"}, NOW + 5, previous=previous)
    assert renewed.refresh_token is previous.refresh_token
    assert renewed.scopes == {"api", "refresh_token"}
    assert renewed.instance_url == previous.instance_url
    assert renewed.issued_at == NOW + 5
    rotated = TokenSet.from_response(
        {"access_token": "a-x9", "refresh_token": "rotated-x9"}, NOW, previous=previous
    )
    assert rotated.refresh_token is not None
    assert rotated.refresh_token.reveal() == "rotated-x9"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "access_token"),
        ({"access_token": ""}, "access_token"),
        ({"access_token": 5}, "access_token"),
        ({"access_token": "a-x9", "expires_in": "soon"}, "expires_in"),
        ({"access_token": "a-x9", "expires_in": True}, "expires_in"),
        ({"access_token": "a-x9", "expires_in": float("nan")}, "expires_in"),
        ({"access_token": "a-x9", "scope": 5}, "scope"),
        ({"access_token": "a-x9", "instance_url": 5}, "instance_url"),
    ],
)
def test_malformed_responses_raise_authentication_failed_naming_the_field(body, field):
    with pytest.raises(AuthenticationFailed, match=field):
        TokenSet.from_response(body, NOW)


def test_expires_within_and_is_expired():
    token = TokenSet(access_token=Secret("a-x9xx"), expires_at=NOW + 100)
    assert not token.expires_within(60, NOW)
    assert token.expires_within(101, NOW)
    assert not token.is_expired(NOW + 99)
    assert token.is_expired(NOW + 100)


@given(
    scopes=st.lists(st.from_regex(r"[a-z:_.]{1,12}", fullmatch=True), max_size=8),
    sep=st.sampled_from([" ", ",", ", ", "  ", "\t"]),
)
def test_scope_parsing_accepts_space_and_comma_separators(scopes, sep):
    assert parse_scopes(sep.join(scopes)) == frozenset(scopes)


@given(
    issued_ms=st.integers(min_value=10**11 + 1, max_value=10**13),
    expires_in=st.one_of(st.none(), st.integers(min_value=0, max_value=10**7)),
    as_string=st.booleans(),
)
def test_issued_at_ms_and_expires_in_arithmetic(issued_ms, expires_in, as_string):
    body: dict[str, object] = {
        "access_token": "tok-x9",
        "issued_at": str(issued_ms) if as_string else issued_ms,
    }
    if expires_in is not None:
        body["expires_in"] = str(expires_in) if as_string else expires_in
    token = TokenSet.from_response(body, NOW)
    assert token.issued_at == pytest.approx(issued_ms / 1000)
    assert token.expires_at == (None if expires_in is None else NOW + expires_in)


def test_storage_round_trip_preserves_every_field():
    token = TokenSet.from_response(SLACK, NOW)
    data = token.reveal_for_storage()
    again = TokenSet.from_storage(data)
    assert again.same_access_token(token)
    assert again.refresh_token == token.refresh_token
    assert (again.expires_at, again.scopes, again.token_type, again.extra) == (
        token.expires_at,
        token.scopes,
        token.token_type,
        token.extra,
    )


def test_repr_and_str_never_show_token_values():
    token = TokenSet.from_response(SLACK, NOW)
    stored = StoredToken(token, 3)
    for text in (repr(token), str(token), repr(stored)):
        assert "xoxe.xoxb-1-yyy-x9" not in text
        assert "xoxe-1-yyy-x9" not in text
        assert "xoxe.xoxp-1-user-x9" not in text

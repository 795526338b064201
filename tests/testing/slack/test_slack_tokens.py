"""OAuth install, token rotation (single-use refresh tokens), expiry and the authorize step."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@pytest.fixture
def rotating(make_emulator):
    return make_emulator(rate_limits=False, token_rotation=True)


def _exchange(slack, emulator, **extra):
    code = emulator.create_oauth_code(scopes=["chat:write", "channels:read"])
    return slack.call(
        "oauth.v2.access",
        token=None,
        client_id=emulator.config.client_id,
        client_secret=emulator.config.client_secret,
        code=code,
        **extra,
    )


def _refresh(slack, emulator, refresh_token):
    return slack.call(
        "oauth.v2.access",
        token=None,
        client_id=emulator.config.client_id,
        client_secret=emulator.config.client_secret,
        grant_type="refresh_token",
        refresh_token=refresh_token,
    )


def test_install_without_rotation_gives_a_non_expiring_bot_token(slack, emulator, clock) -> None:
    answer = _exchange(slack, emulator)
    assert answer["access_token"].startswith("xoxb-")
    assert answer["token_type"] == "bot"
    assert "refresh_token" not in answer
    assert "expires_in" not in answer
    assert answer["team"] == {"id": "T0001", "name": "Acme"}
    clock.advance(10 * 86_400)
    assert slack.call("auth.test", token=answer["access_token"])["ok"] is True


def test_rotating_install_gives_xoxe_tokens_that_expire_after_12_hours(
    rotating, caller, clock
) -> None:
    slack = caller(rotating)
    answer = _exchange(slack, rotating)
    assert answer["access_token"].startswith("xoxe.xoxb-")
    assert answer["refresh_token"].startswith("xoxe-1-")
    assert answer["expires_in"] == 43_200
    token = answer["access_token"]
    clock.advance(43_199)
    assert slack.call("auth.test", token=token)["ok"] is True
    clock.advance(1)
    assert slack.call("auth.test", token=token) == {"ok": False, "error": "token_expired"}


def test_refresh_tokens_are_single_use(rotating, caller, clock) -> None:
    slack = caller(rotating)
    first = _exchange(slack, rotating)
    clock.advance(50_000)
    second = _refresh(slack, rotating, first["refresh_token"])
    assert second["ok"] is True
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert second["expires_in"] == 43_200
    assert slack.call("auth.test", token=second["access_token"])["ok"] is True
    reused = _refresh(slack, rotating, first["refresh_token"])
    assert reused == {"ok": False, "error": "invalid_refresh_token"}
    assert _refresh(slack, rotating, second["refresh_token"])["ok"] is True


def test_the_old_access_token_lives_until_its_own_expiry(rotating, caller, clock) -> None:
    slack = caller(rotating)
    first = _exchange(slack, rotating)
    clock.advance(3_600)
    _refresh(slack, rotating, first["refresh_token"])
    assert slack.call("auth.test", token=first["access_token"])["ok"] is True
    clock.advance(43_200 - 3_600)
    assert slack.call("auth.test", token=first["access_token"])["error"] == "token_expired"


def test_token_lifetime_is_configurable(make_emulator, caller, clock) -> None:
    emulator = make_emulator(rate_limits=False, token_rotation=True, token_lifetime=60.0)
    answer = _exchange(caller(emulator), emulator)
    assert answer["expires_in"] == 60


def test_client_credentials_may_come_as_basic_auth(rotating, caller) -> None:
    slack = caller(rotating)
    first = _exchange(slack, rotating)
    pair = f"{rotating.config.client_id}:{rotating.config.client_secret}".encode()
    answer = slack.request(
        "POST",
        "/api/oauth.v2.access",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
        headers={"Authorization": "Basic " + base64.b64encode(pair).decode()},
    ).json()
    assert answer["ok"] is True


def test_bad_client_credentials_codes_and_grant_types(slack, emulator) -> None:
    base = {"token": None, "client_id": emulator.config.client_id}
    assert slack.call("oauth.v2.access", **base, client_secret="wrong", code="x")["error"] == (
        "bad_client_secret"
    )
    ok = {**base, "client_secret": emulator.config.client_secret}
    assert slack.call("oauth.v2.access", **ok, code="nope")["error"] == "invalid_code"
    assert slack.call("oauth.v2.access", **ok, grant_type="password")["error"] == (
        "invalid_grant_type"
    )
    code = emulator.create_oauth_code()
    assert slack.call("oauth.v2.access", **ok, code=code)["ok"] is True
    assert slack.call("oauth.v2.access", **ok, code=code)["error"] == "invalid_code"


def test_redirect_uri_must_match_the_authorize_step(slack, emulator) -> None:
    code = emulator.create_oauth_code(redirect_uri="https://app.example/cb")
    answer = slack.call(
        "oauth.v2.access",
        token=None,
        client_id=emulator.config.client_id,
        client_secret=emulator.config.client_secret,
        code=code,
        redirect_uri="https://evil.example/cb",
    )
    assert answer["error"] == "bad_redirect_uri"


def test_authorize_redirects_with_a_code_and_the_state(slack, emulator) -> None:
    response = slack.request(
        "GET",
        "/oauth/v2/authorize",
        params={
            "client_id": emulator.config.client_id,
            "scope": "chat:write,users:read",
            "user_scope": "search:read",
            "redirect_uri": "https://app.example/cb",
            "state": "s-123",
        },
    )
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    query = parse_qs(location.query)
    assert (location.netloc, query["state"]) == ("app.example", ["s-123"])
    answer = slack.call(
        "oauth.v2.access",
        token=None,
        client_id=emulator.config.client_id,
        client_secret=emulator.config.client_secret,
        code=query["code"][0],
        redirect_uri="https://app.example/cb",
    )
    assert answer["scope"] == "chat:write,users:read"
    assert answer["authed_user"]["scope"] == "search:read"
    assert answer["authed_user"]["access_token"].startswith("xoxp-")


def test_expire_tokens_hook_expires_rotating_tokens_now(rotating, caller) -> None:
    slack = caller(rotating)
    token = rotating.issue_token(rotating=True).access_token
    assert rotating.expire_tokens() == 1
    assert slack.call("auth.test", token=token)["error"] == "token_expired"
    assert slack.call("auth.test")["ok"] is True  # the static default token is untouched
    assert rotating.expire_tokens(include_non_rotating=True) >= 1
    assert slack.call("auth.test")["error"] == "token_expired"


def test_token_records_never_show_their_value(emulator) -> None:
    issued = emulator.issue_token(rotating=True)
    record = emulator.state.tokens[issued.access_token]
    assert issued.access_token not in repr(record)
    assert issued.access_token not in repr(issued)
    assert issued.refresh_token not in repr(emulator.state.refresh_grants[issued.refresh_token])


# make_emulator is a factory: each example builds its own emulator, so sharing it is safe.
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.booleans(), min_size=1, max_size=12))
def test_a_refresh_chain_accepts_each_refresh_token_exactly_once(make_emulator, caller, replays):
    emulator = make_emulator(rate_limits=False, token_rotation=True)
    slack = caller(emulator)
    current = emulator.issue_token(rotating=True).refresh_token
    used: list[str] = []
    for replay in replays:
        if replay and used:
            assert _refresh(slack, emulator, used[-1])["error"] == "invalid_refresh_token"
        answer = _refresh(slack, emulator, current)
        assert answer["ok"] is True
        used.append(current)
        current = answer["refresh_token"]

"""XOAUTH2: the SASL string, the error challenge, and the token source's single refresh."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.adapters.email.xoauth2 import (
    TokenSource,
    XOAuth2Mechanism,
    parse_error_challenge,
    sasl_string,
)
from connectors.auth import InMemoryLockProvider, InMemoryTokenStore, TokenManager, TokenSet
from connectors.errors import ConfigurationError, InvalidSetting
from connectors.secrets import Secret


def test_the_sasl_string_matches_the_documented_format():
    assert sasl_string("a@x.test", Secret("tok")) == "user=a@x.test\x01auth=Bearer tok\x01\x01"


@given(
    st.text(min_size=1).filter(lambda s: "\x01" not in s),
    st.text(min_size=1).filter(lambda s: "\x01" not in s),
)
def test_user_and_token_are_recoverable_from_the_string(user, token):
    fields = sasl_string(user, Secret(token)).rstrip("\x01").split("\x01")
    assert fields == [f"user={user}", f"auth=Bearer {token}"]


def test_separators_in_user_or_token_are_refused():
    with pytest.raises(InvalidSetting):
        sasl_string("a\x01b", Secret("t"))
    with pytest.raises(ConfigurationError):
        sasl_string("a", Secret("t\x01"))


def test_the_mechanism_answers_the_error_challenge_with_an_empty_line():
    mechanism = XOAuth2Mechanism("a@x.test", Secret("secret-token"))
    assert mechanism(b"") == "user=a@x.test\x01auth=Bearer secret-token\x01\x01"
    error = json.dumps({"status": "401", "schemes": "bearer", "scope": "https://mail.google.com/"})
    assert mechanism(error.encode()) == b""
    assert mechanism.error is not None
    assert mechanism.error.status == "401"
    assert "secret-token" not in repr(mechanism)


@pytest.mark.parametrize("encode", [True, False])
def test_error_challenges_parse_from_base64_or_plain_json(encode):
    body = json.dumps({"status": "400", "schemes": "Bearer", "scope": "s"}).encode()
    parsed = parse_error_challenge(base64.b64encode(body) if encode else body)
    assert parsed is not None
    assert (parsed.status, parsed.scope) == ("400", "s")


@pytest.mark.parametrize("data", [b"", b"not json", base64.b64encode(b"[1,2]")])
def test_anything_else_is_not_an_error_challenge(data):
    assert parse_error_challenge(data) is None


def manager_with(stale: str, fresh: str | None):
    calls: list[str] = []

    class Grant:
        async def obtain(self, current):
            calls.append("obtain")
            return TokenSet(access_token=Secret(fresh or stale))

    async def build():
        tokens = TokenManager(InMemoryTokenStore(), InMemoryLockProvider())
        await tokens.install("acme", "mail", TokenSet(access_token=Secret(stale)))
        tokens.register("acme", "mail", Grant())
        return tokens

    return build, calls


def test_the_token_source_refreshes_a_rejected_token_once():
    build, calls = manager_with("old", "new")

    async def main():
        source = TokenSource(tenant="acme", manager=await build(), credential="mail", static=None)
        current = await source.current()
        fresh = await source.refreshed(current)
        again = await source.refreshed(current)  # already replaced: no second grant call
        return current, fresh, again

    current, fresh, again = asyncio.run(main())
    assert current.reveal() == "old"
    assert fresh is not None
    assert fresh.reveal() == "new"
    assert again is not None
    assert again.reveal() == "new"
    assert calls == ["obtain"]


def test_a_refresh_that_returns_the_same_token_gives_none():
    build, _ = manager_with("same", None)

    async def main():
        source = TokenSource(tenant="acme", manager=await build(), credential="mail", static=None)
        return await source.refreshed(await source.current())

    assert asyncio.run(main()) is None


def test_a_static_token_cannot_be_refreshed():
    source = TokenSource(tenant="acme", manager=None, credential=None, static=Secret("s"))
    assert asyncio.run(source.refreshed(Secret("s"))) is None
    assert asyncio.run(source.current()).reveal() == "s"


def test_a_credential_without_a_token_manager_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="token manager"):
        TokenSource(tenant="acme", manager=None, credential="mail", static=None)
    with pytest.raises(ConfigurationError):
        TokenSource(tenant="acme", manager=None, credential=None, static=None)

"""Signed, expiring payloads: round trip, tampering, purpose separation, expiry."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from connectors.server.signing import derive, sign, unsign

KEY = b"k" * 32
values = st.one_of(st.text(max_size=30), st.integers(), st.booleans(), st.none())
payloads = st.dictionaries(
    st.text(min_size=1, max_size=8).filter(lambda k: k != "exp"), values, max_size=5
)


@given(payloads)
def test_a_signed_payload_reads_back_until_it_expires(data: dict[str, object]) -> None:
    token = sign(KEY, "p", data, expires_at=2000.0)  # type: ignore[arg-type]
    back = unsign(KEY, "p", token, now=1999.0)
    assert back is not None
    assert {k: v for k, v in back.items() if k != "exp"} == data
    assert unsign(KEY, "p", token, now=2000.0) is None


@given(
    payloads, st.integers(min_value=0, max_value=10_000), st.integers(min_value=1, max_value=255)
)
def test_any_changed_character_is_rejected(data: dict[str, object], where: int, delta: int) -> None:
    token = sign(KEY, "p", data, expires_at=2000.0)  # type: ignore[arg-type]
    index = where % len(token)
    changed = token[:index] + chr((ord(token[index]) + delta) % 128) + token[index + 1 :]
    if changed != token:
        assert unsign(KEY, "p", changed, now=0.0) is None


def test_a_signature_differing_only_in_ignored_padding_bits_is_refused() -> None:
    # 32 bytes are 43 base64 characters; the last one carries four bits and two that decoding
    # drops, so "M" and "N" there decode alike. The token is still not the one that was signed.
    token = sign(KEY, "p", {"k": "v"}, expires_at=2000.0)
    last = token[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    twin = alphabet[alphabet.index(last) ^ 1]
    changed = token[:-1] + twin
    assert base64.urlsafe_b64decode(changed.split(".")[1] + "=") == base64.urlsafe_b64decode(
        token.split(".")[1] + "="
    )
    assert unsign(KEY, "p", changed, now=0.0) is None


def test_a_value_signed_for_one_purpose_is_refused_for_another() -> None:
    token = sign(KEY, "session", {"sid": "x"}, expires_at=2000.0)
    assert unsign(KEY, "oauth-state", token, now=0.0) is None
    assert unsign(b"other-key" * 4, "session", token, now=0.0) is None


@given(st.text(max_size=200))
def test_garbage_never_unsigns(text: str) -> None:
    assert unsign(KEY, "p", text, now=0.0) is None


def test_derive_is_keyed_and_separated_by_purpose() -> None:
    assert derive(KEY, "csrf", "sid") == derive(KEY, "csrf", "sid")
    assert derive(KEY, "csrf", "sid") != derive(KEY, "other", "sid")
    assert derive(KEY, "csrf", "sid") != derive(b"x" * 32, "csrf", "sid")

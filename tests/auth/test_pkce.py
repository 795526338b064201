"""PKCE (RFC 7636): the appendix B test vector, verifier rules, and agreement with Authlib."""

from __future__ import annotations

import pytest
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from hypothesis import given
from hypothesis import strategies as st

from connectors.auth import generate_code_verifier, s256_challenge
from connectors.auth.pkce import validate_code_verifier
from connectors.errors import InvalidRequest
from connectors.secrets import Secret

VERIFIER_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


def test_rfc_7636_appendix_b_vector():
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert s256_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    assert s256_challenge(Secret(verifier)) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


@given(st.text(alphabet=VERIFIER_CHARS, min_size=43, max_size=128))
def test_challenge_matches_authlib_and_is_unpadded_base64url(verifier):
    challenge = s256_challenge(verifier)
    assert challenge == create_s256_code_challenge(verifier)
    assert len(challenge) == 43
    assert "=" not in challenge


@pytest.mark.parametrize("bad", ["", "a" * 42, "a" * 129, "a" * 42 + "!", "ä" * 43])
def test_verifiers_outside_rfc_7636_are_rejected(bad):
    with pytest.raises(InvalidRequest):
        validate_code_verifier(bad)


@given(st.integers(min_value=32, max_value=96))
def test_generated_verifiers_are_valid_secrets(nbytes):
    verifier = generate_code_verifier(nbytes)
    assert isinstance(verifier, Secret)
    assert validate_code_verifier(verifier) == verifier.reveal()


def test_generated_verifier_size_is_bounded():
    with pytest.raises(InvalidRequest):
        generate_code_verifier(16)

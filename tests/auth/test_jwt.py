"""JwtSigner and SignedJwtAuth: HS256/RS256/ES256 tokens that joserfc verifies, caching, errors."""

from __future__ import annotations

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import ECKey, OctKey, RSAKey

from connectors.auth import JwtSigner, SignedJwtAuth
from connectors.clock import FakeClock
from connectors.errors import DefinitionError
from connectors.secrets import Secret

HMAC_SECRET = "hmac-shared-secret-canary-0123456789"
RSA = RSAKey.generate_key(2048)
EC = ECKey.generate_key("P-256")
RSA_PEM = RSA.as_pem(private=True).decode()
EC_PEM = EC.as_pem(private=True).decode()


def verifier(algorithm: str) -> OctKey | RSAKey | ECKey:
    if algorithm == "HS256":
        return OctKey.import_key(HMAC_SECRET.encode())
    public = (RSA if algorithm == "RS256" else EC).as_pem(private=False)
    return (RSAKey if algorithm == "RS256" else ECKey).import_key(public)


def signing_key(algorithm: str) -> Secret:
    return Secret({"HS256": HMAC_SECRET, "RS256": RSA_PEM, "ES256": EC_PEM}[algorithm])


@pytest.mark.parametrize("algorithm", ["HS256", "RS256", "ES256"])
def test_signed_token_verifies_with_joserfc_and_carries_the_claims(algorithm):
    clock = FakeClock()
    signer = JwtSigner(
        signing_key(algorithm),
        algorithm=algorithm,
        issuer="client-id",
        subject="alice@example.com",
        audience="https://login.example.test",
        lifetime=180,
        key_id="k1",
        extra_claims={"scope": "api"},
        clock=clock,
    )
    token = jwt.decode(signer.sign().reveal(), verifier(algorithm), algorithms=[algorithm])
    now = int(clock.time())
    assert token.header == {"alg": algorithm, "typ": "JWT", "kid": "k1"}
    claims = dict(token.claims)
    jti = claims.pop("jti")
    assert len(jti) == 32
    assert claims == {
        "iss": "client-id",
        "sub": "alice@example.com",
        "aud": "https://login.example.test",
        "iat": now,
        "exp": now + 180,
        "scope": "api",
    }


def test_rsa_key_may_be_given_as_pem_bytes_and_a_wrong_key_does_not_verify():
    signer = JwtSigner(RSA_PEM.encode(), algorithm="RS256", issuer="i")
    compact = signer.sign(1_700_000_000).reveal()
    other = RSAKey.generate_key(2048)
    with pytest.raises(BadSignatureError):
        jwt.decode(compact, other, algorithms=["RS256"])


def test_each_signature_has_a_fresh_jti_and_optional_claims_can_be_dropped():
    signer = JwtSigner(Secret(HMAC_SECRET), algorithm="HS256", issuer="i")
    key = verifier("HS256")
    a = jwt.decode(signer.sign(1_700_000_000).reveal(), key, algorithms=["HS256"]).claims
    b = jwt.decode(signer.sign(1_700_000_000).reveal(), key, algorithms=["HS256"]).claims
    assert a["jti"] != b["jti"]
    bare = JwtSigner(
        Secret(HMAC_SECRET), algorithm="HS256", issuer="i", include_iat=False, include_jti=False
    )
    assert set(bare.claims(1_700_000_000)) == {"iss", "exp"}


@settings(max_examples=25, deadline=None)
@given(
    iss=st.text(min_size=1, max_size=30),
    sub=st.text(min_size=1, max_size=30),
    aud=st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=3),
    now=st.integers(min_value=0, max_value=4_000_000_000),
    lifetime=st.integers(min_value=1, max_value=86_400),
)
def test_any_claims_round_trip_through_a_verified_hs256_token(iss, sub, aud, now, lifetime):
    signer = JwtSigner(
        Secret(HMAC_SECRET),
        algorithm="HS256",
        issuer=iss,
        subject=sub,
        audience=aud,
        lifetime=lifetime,
    )
    claims = jwt.decode(signer.sign(now).reveal(), verifier("HS256"), algorithms=["HS256"]).claims
    assert (claims["iss"], claims["sub"], claims["aud"]) == (iss, sub, aud)
    assert claims["exp"] - claims["iat"] == lifetime


def test_bad_keys_and_algorithms_are_definition_errors_without_the_key():
    with pytest.raises(DefinitionError) as info:
        JwtSigner(Secret("not-a-pem-canary-key"), algorithm="RS256")
    assert "not-a-pem-canary-key" not in str(info.value)
    with pytest.raises(DefinitionError):
        JwtSigner(Secret(HMAC_SECRET), algorithm="none")  # type: ignore[arg-type]
    with pytest.raises(DefinitionError):
        JwtSigner(Secret(EC_PEM), algorithm="ES256", lifetime=0)
    p384 = ECKey.generate_key("P-384").as_pem(private=True).decode()
    with pytest.raises(DefinitionError, match="P-256"):
        JwtSigner(Secret(p384), algorithm="ES256")


def test_signed_jwt_auth_reuses_the_token_until_near_expiry():
    clock = FakeClock()
    signer = JwtSigner(
        Secret(HMAC_SECRET), algorithm="HS256", issuer="i", lifetime=300, clock=clock
    )
    auth = SignedJwtAuth(signer, refresh_margin=30, clock=clock)
    sent: list[str] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        sent.append(request.headers["Authorization"])
        return httpx2.Response(200)

    with httpx2.Client(transport=httpx2.MockTransport(handle), auth=auth) as client:
        client.get("https://api.example.test/")
        clock.advance(200)
        client.get("https://api.example.test/")
        clock.advance(75)  # 25 s left: inside the margin
        client.get("https://api.example.test/")
    assert sent[0] == sent[1] != sent[2]
    assert all(s.startswith("Bearer ey") for s in sent)


def test_signed_jwt_auth_without_reuse_signs_per_request():
    clock = FakeClock()
    signer = JwtSigner(Secret(HMAC_SECRET), algorithm="HS256", issuer="i", clock=clock)
    auth = SignedJwtAuth(signer, reuse=False, clock=clock)
    first, second = auth.current_token(), auth.current_token()
    assert first != second


def test_reprs_hide_key_and_token():
    signer = JwtSigner(Secret(HMAC_SECRET), algorithm="HS256", issuer="i")
    token = signer.sign()
    auth = SignedJwtAuth(signer)
    auth.current_token()
    for text in (repr(signer), repr(auth), repr(token), str(token)):
        assert HMAC_SECRET not in text
        assert token.reveal() not in text

"""OAuth flows of the emulated org: JWT bearer, refresh (with rotation), PKCE, password, client
credentials, and the shape of what they return."""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.jwk import RSAKey

from connectors.testing.salesforce import ConnectedApp, EmulatedUser
from connectors.testing.salesforce.config import DEFAULT_APP, DEFAULT_USER

from ._support import V, client, make_emulator, run

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
REDIRECT = "http://localhost:8080/callback"


@cache
def _key_pair() -> tuple[str, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private_pem, public_pem


@cache
def _other_private_pem() -> str:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def _assertion(
    now: float,
    *,
    aud: str = "https://login.salesforce.com",
    exp_in: float = 180,
    private_pem: str | None = None,
    sub: str = DEFAULT_USER.username,
) -> str:
    claims = {"iss": "jwt-app", "sub": sub, "aud": aud, "exp": int(now + exp_in)}
    key = RSAKey.import_key(private_pem or _key_pair()[0])
    return jwt.encode({"alg": "RS256"}, claims, key)


def _jwt_emulator():
    emulator, clock = make_emulator()
    emulator.add_connected_app(ConnectedApp("jwt-app", "jwt-secret", public_key_pem=_key_pair()[1]))
    return emulator, clock


def _token_call(emulator, data, headers=None):
    async def main():
        async with client(emulator) as http:
            return await http.post("/services/oauth2/token", data=data, headers=headers or {})

    return run(main)


def test_jwt_bearer_with_a_valid_assertion_issues_a_session_without_refresh_token():
    emulator, clock = _jwt_emulator()
    response = _token_call(
        emulator, {"grant_type": JWT_GRANT, "assertion": _assertion(clock.time())}
    )
    body = response.json()
    assert response.status_code == 200
    assert body["token_type"] == "Bearer"
    assert "refresh_token" not in body
    assert "expires_in" not in body
    assert body["access_token"].startswith("00D5g000004EMUL!")
    assert len(body["issued_at"]) == 13
    assert body["issued_at"] == str(int(clock.time() * 1000))
    assert body["id"].endswith("/" + emulator.admin_user_id[:15])
    emulator.close()


def test_jwt_bearer_rejects_a_bad_signature_a_wrong_audience_and_an_expired_assertion():
    emulator, clock = _jwt_emulator()
    now = clock.time()
    bad_sig = _token_call(
        emulator,
        {"grant_type": JWT_GRANT, "assertion": _assertion(now, private_pem=_other_private_pem())},
    )
    wrong_aud = _token_call(
        emulator,
        {"grant_type": JWT_GRANT, "assertion": _assertion(now, aud="https://evil.example")},
    )
    expired = _token_call(
        emulator, {"grant_type": JWT_GRANT, "assertion": _assertion(now, exp_in=-1)}
    )
    too_long = _token_call(
        emulator, {"grant_type": JWT_GRANT, "assertion": _assertion(now, exp_in=3600)}
    )
    unknown_user = _token_call(
        emulator, {"grant_type": JWT_GRANT, "assertion": _assertion(now, sub="ghost@x")}
    )
    garbage = _token_call(emulator, {"grant_type": JWT_GRANT, "assertion": "not.a.jwt"})
    assert bad_sig.json() == {"error": "invalid_grant", "error_description": "invalid assertion"}
    assert wrong_aud.json() == {
        "error": "invalid_grant",
        "error_description": "audience is invalid",
    }
    assert expired.json()["error"] == "invalid_grant"
    assert expired.json()["error_description"] == "expired assertion"
    assert too_long.json()["error"] == "invalid_grant"
    assert unknown_user.json()["error_description"] == "user hasn't approved this consumer"
    assert garbage.status_code == 400
    assert {r.status_code for r in (bad_sig, wrong_aud, expired, too_long, unknown_user)} == {400}
    emulator.close()


def test_jwt_bearer_accepts_a_certificate_instead_of_a_bare_public_key():
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    private_pem, _ = _key_pair()
    private = serialization.load_pem_private_key(private_pem.encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "jwt-app")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(1)
        .not_valid_before(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
        .not_valid_after(dt.datetime(2040, 1, 1, tzinfo=dt.UTC))
        .sign(private, hashes.SHA256())
    )
    emulator, clock = make_emulator()
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    emulator.add_connected_app(ConnectedApp("jwt-app", public_key_pem=pem))
    response = _token_call(
        emulator, {"grant_type": JWT_GRANT, "assertion": _assertion(clock.time())}
    )
    assert response.status_code == 200
    emulator.close()


def _pkce_pair(verifier: str = "v" * 50) -> tuple[str, str]:
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    return verifier, challenge


def _authorize(emulator, **params):
    async def main():
        async with client(emulator) as http:
            query = {
                "response_type": "code",
                "client_id": DEFAULT_APP.consumer_key,
                "redirect_uri": REDIRECT,
                "state": "s-1",
                **params,
            }
            return await http.get("/services/oauth2/authorize", params=query)

    return run(main)


def _code_from(response) -> str:
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    query = parse_qs(location.query)
    assert query["state"] == ["s-1"]
    return query["code"][0]


def _exchange(emulator, code: str, verifier: str | None):
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": DEFAULT_APP.consumer_key,
        "client_secret": DEFAULT_APP.consumer_secret,
        "redirect_uri": REDIRECT,
    }
    if verifier is not None:
        data["code_verifier"] = verifier
    return _token_call(emulator, data)


def test_pkce_code_exchange_with_the_right_verifier_returns_a_refresh_token():
    emulator, _ = make_emulator()
    verifier, challenge = _pkce_pair()
    code = _code_from(_authorize(emulator, code_challenge=challenge, code_challenge_method="S256"))
    response = _exchange(emulator, code, verifier)
    assert response.status_code == 200
    assert response.json()["refresh_token"].startswith("5Aep861")
    again = _exchange(emulator, code, verifier)
    assert again.json() == {
        "error": "invalid_grant",
        "error_description": "expired authorization code",
    }
    emulator.close()


def test_pkce_code_exchange_with_a_wrong_or_missing_verifier_fails():
    emulator, _ = make_emulator()
    _, challenge = _pkce_pair()
    code = _code_from(_authorize(emulator, code_challenge=challenge))
    wrong = _exchange(emulator, code, "w" * 50)
    assert wrong.json() == {"error": "invalid_grant", "error_description": "invalid code verifier"}
    code2 = _code_from(_authorize(emulator, code_challenge=challenge))
    assert _exchange(emulator, code2, None).json()["error"] == "invalid_grant"
    emulator.close()


def test_authorize_requires_pkce_when_the_app_demands_it_and_refuses_unknown_redirects():
    emulator, _ = make_emulator()
    emulator.add_connected_app(
        ConnectedApp(
            "strict",
            "s",
            redirect_uris=(REDIRECT,),
            require_pkce=True,
            auto_approve_user=DEFAULT_USER.username,
        )
    )
    refused = _authorize(emulator, client_id="strict")
    assert refused.status_code == 302
    assert "error=invalid_request" in refused.headers["location"]
    bad_redirect = _authorize(emulator, redirect_uri="https://evil.example/cb")
    assert bad_redirect.status_code == 400
    assert bad_redirect.json()["error"] == "redirect_uri_mismatch"
    emulator.close()


def _refresh(emulator, token: str):
    return _token_call(
        emulator,
        {
            "grant_type": "refresh_token",
            "refresh_token": token,
            "client_id": DEFAULT_APP.consumer_key,
            "client_secret": DEFAULT_APP.consumer_secret,
        },
    )


def _initial_refresh_token(emulator) -> str:
    verifier, challenge = _pkce_pair()
    code = _code_from(_authorize(emulator, code_challenge=challenge))
    return str(_exchange(emulator, code, verifier).json()["refresh_token"])


def test_refresh_without_rotation_reuses_the_same_refresh_token():
    emulator, _ = make_emulator()
    token = _initial_refresh_token(emulator)
    first = _refresh(emulator, token)
    second = _refresh(emulator, token)
    assert first.status_code == second.status_code == 200
    assert "refresh_token" not in first.json()
    assert first.json()["access_token"] != second.json()["access_token"]
    emulator.close()


def test_refresh_with_rotation_issues_a_new_token_and_reuse_of_the_old_one_revokes_the_family():
    emulator, _ = make_emulator()
    emulator.add_connected_app(
        ConnectedApp(
            DEFAULT_APP.consumer_key,
            DEFAULT_APP.consumer_secret,
            redirect_uris=(REDIRECT,),
            rotate_refresh_tokens=True,
            auto_approve_user=DEFAULT_USER.username,
        )
    )
    old = _initial_refresh_token(emulator)
    rotated = _refresh(emulator, old).json()
    new = rotated["refresh_token"]
    assert new != old
    reuse = _refresh(emulator, old)
    assert reuse.status_code == 400
    assert reuse.json() == {
        "error": "invalid_grant",
        "error_description": "expired access/refresh token",
    }
    # The reuse revoked the whole family: the current token and its sessions are dead too.
    assert _refresh(emulator, new).json()["error"] == "invalid_grant"
    assert emulator.sessions.validate(rotated["access_token"]) is None
    emulator.close()


def test_password_flow_checks_password_plus_security_token():
    emulator, _ = make_emulator()
    emulator.add_user(EmulatedUser("tok@example.com", "pw", security_token="TOKEN123"))
    base = {
        "grant_type": "password",
        "client_id": DEFAULT_APP.consumer_key,
        "client_secret": DEFAULT_APP.consumer_secret,
        "username": "tok@example.com",
    }
    assert _token_call(emulator, {**base, "password": "pw"}).json() == {
        "error": "invalid_grant",
        "error_description": "authentication failure",
    }
    ok = _token_call(emulator, {**base, "password": "pwTOKEN123"})
    assert ok.status_code == 200
    assert "refresh_token" not in ok.json()
    wrong_secret = _token_call(emulator, {**base, "password": "pwTOKEN123", "client_secret": "x"})
    assert wrong_secret.json()["error"] == "invalid_client"
    emulator.close()


def test_client_credentials_by_body_or_basic_auth_runs_as_the_integration_user():
    emulator, _ = make_emulator()
    by_body = _token_call(
        emulator,
        {
            "grant_type": "client_credentials",
            "client_id": DEFAULT_APP.consumer_key,
            "client_secret": DEFAULT_APP.consumer_secret,
        },
    )
    basic = base64.b64encode(
        f"{DEFAULT_APP.consumer_key}:{DEFAULT_APP.consumer_secret}".encode()
    ).decode()
    by_header = _token_call(
        emulator, {"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {basic}"}
    )
    assert by_body.status_code == by_header.status_code == 200
    assert by_body.json()["id"].endswith(emulator.admin_user_id[:15])
    assert "refresh_token" not in by_body.json()
    emulator.add_connected_app(ConnectedApp("no-user", "sec"))
    refused = _token_call(
        emulator,
        {"grant_type": "client_credentials", "client_id": "no-user", "client_secret": "sec"},
    )
    assert refused.json()["error"] == "invalid_grant"
    emulator.close()


def test_unknown_grant_type_and_client_are_rejected():
    emulator, _ = make_emulator()
    assert (
        _token_call(emulator, {"grant_type": "magic"}).json()["error"] == "unsupported_grant_type"
    )
    unknown = _token_call(
        emulator, {"grant_type": "client_credentials", "client_id": "nobody", "client_secret": "x"}
    )
    assert unknown.json() == {
        "error": "invalid_client_id",
        "error_description": "client identifier invalid",
    }
    emulator.close()


def test_issued_token_works_on_the_rest_api_and_revoke_kills_it():
    emulator, clock = _jwt_emulator()

    async def main():
        async with client(emulator) as http:
            token = (
                await http.post(
                    "/services/oauth2/token",
                    data={"grant_type": JWT_GRANT, "assertion": _assertion(clock.time())},
                )
            ).json()["access_token"]
            ok = await http.get(f"{V}/limits", headers={"Authorization": f"OAuth {token}"})
            await http.post("/services/oauth2/revoke", data={"token": token})
            after = await http.get(f"{V}/limits", headers={"Authorization": f"Bearer {token}"})
            return ok.status_code, after.status_code

    assert run(main) == (200, 401)
    emulator.close()

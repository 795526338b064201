"""Signed JSON Web Tokens (RFC 7519) via joserfc: a signer and an auth flow that sends them.

:class:`JwtSigner` makes the short-lived JWTs used both as API credentials (``SignedJwtAuth``,
e.g. service-to-service calls) and as OAuth assertions (the RFC 7523 JWT bearer grant in
:mod:`connectors.auth.grants`). The private key stays inside the joserfc key object; the signed
token is returned as a :class:`Secret`, because anyone holding it can use it until it expires.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator, Mapping, Sequence
from typing import Final, Literal, TypeAlias

import httpx2
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OctKey, RSAKey

from connectors.clock import Clock, system_clock
from connectors.errors import DefinitionError
from connectors.secrets import Secret

__all__ = ["JwtAlgorithm", "JwtSigner", "SignedJwtAuth"]

JwtAlgorithm: TypeAlias = Literal["HS256", "RS256", "ES256"]
_ALGORITHMS: Final = ("HS256", "RS256", "ES256")
_Audience: TypeAlias = str | Sequence[str]


def _import_key(algorithm: JwtAlgorithm, raw: bytes) -> OctKey | RSAKey | ECKey:
    if algorithm == "HS256":
        return OctKey.import_key(raw)
    if algorithm == "RS256":
        return RSAKey.import_key(raw)
    return ECKey.import_key(raw)


class JwtSigner:
    """Signs JWTs with ``iss``/``sub``/``aud``/``iat``/``exp``/``jti`` claims.

    ``key`` is the HMAC secret (HS256) or a PEM private key (RS256, ES256), as a :class:`Secret`
    or bytes. ``lifetime`` is the seconds from ``iat`` to ``exp``; Salesforce's JWT bearer flow
    wants at most about three minutes. A bad key is reported as a :class:`DefinitionError`
    naming the algorithm, never echoing the key.
    """

    __slots__ = (
        "_clock",
        "_extra",
        "_key",
        "algorithm",
        "audience",
        "include_iat",
        "include_jti",
        "issuer",
        "key_id",
        "lifetime",
        "subject",
    )

    def __init__(
        self,
        key: Secret | bytes,
        *,
        algorithm: JwtAlgorithm = "RS256",
        issuer: str | None = None,
        subject: str | None = None,
        audience: _Audience | None = None,
        lifetime: float = 300.0,
        key_id: str | None = None,
        extra_claims: Mapping[str, str | int | float | bool] | None = None,
        include_iat: bool = True,
        include_jti: bool = True,
        clock: Clock = system_clock,
    ) -> None:
        if algorithm not in _ALGORITHMS:
            raise DefinitionError(
                f"unsupported JWT algorithm {algorithm!r}", hint="use HS256, RS256 or ES256"
            )
        if lifetime <= 0:
            raise DefinitionError("a JWT lifetime must be positive")
        raw = key.reveal().encode() if isinstance(key, Secret) else bytes(key)
        try:
            self._key: OctKey | RSAKey | ECKey = _import_key(algorithm, raw)
        except (JoseError, ValueError, TypeError):
            raise DefinitionError(
                f"the {algorithm} signing key could not be read",
                hint="HS256 takes the shared secret; RS256 and ES256 take a PEM private key",
            ) from None
        if algorithm == "ES256" and getattr(self._key, "curve_name", "P-256") != "P-256":
            raise DefinitionError("ES256 needs a P-256 key")
        self.algorithm: JwtAlgorithm = algorithm
        self.issuer = issuer
        self.subject = subject
        self.audience = audience
        self.lifetime = float(lifetime)
        self.key_id = key_id
        self._extra = dict(extra_claims or {})
        self.include_iat = include_iat
        self.include_jti = include_jti
        self._clock = clock

    def claims(self, now: float) -> dict[str, str | int | float | bool | list[str]]:
        """The claims a token signed at ``now`` (epoch seconds) carries."""
        issued = int(now)
        claims: dict[str, str | int | float | bool | list[str]] = dict(self._extra)
        if self.issuer is not None:
            claims["iss"] = self.issuer
        if self.subject is not None:
            claims["sub"] = self.subject
        if self.audience is not None:
            claims["aud"] = self.audience if isinstance(self.audience, str) else list(self.audience)
        if self.include_iat:
            claims["iat"] = issued
        claims["exp"] = issued + int(self.lifetime)
        if self.include_jti:
            claims["jti"] = uuid.uuid4().hex
        return claims

    def sign(self, now: float | None = None) -> Secret:
        """A freshly signed compact JWT (with a new ``jti``)."""
        at = self._clock.time() if now is None else now
        header: dict[str, str] = {"alg": self.algorithm, "typ": "JWT"}
        if self.key_id is not None:
            header["kid"] = self.key_id
        token = jwt.encode(header, self.claims(at), self._key, algorithms=[self.algorithm])
        return Secret(token, name="jwt")

    def expiry(self, now: float) -> float:
        """When a token signed at ``now`` expires."""
        return float(int(now) + int(self.lifetime))

    def __repr__(self) -> str:
        return (
            f"JwtSigner(algorithm={self.algorithm!r}, issuer={self.issuer!r}, "
            f"subject={self.subject!r}, audience={self.audience!r}, key=<hidden>)"
        )


class SignedJwtAuth(httpx2.Auth):
    """Send a JWT from ``signer`` as ``Authorization: Bearer <jwt>``.

    With ``reuse=True`` (the default) one token is sent until ``refresh_margin`` seconds before
    it expires; with ``reuse=False`` every request gets a fresh token (and a fresh ``jti``), for
    providers that reject replays.
    """

    def __init__(
        self,
        signer: JwtSigner,
        *,
        reuse: bool = True,
        refresh_margin: float = 30.0,
        header: str = "Authorization",
        scheme: str = "Bearer",
        clock: Clock = system_clock,
    ) -> None:
        self.signer = signer
        self.reuse = reuse
        self.refresh_margin = min(refresh_margin, signer.lifetime / 2)
        self.header = header
        self.scheme = scheme
        self._clock = clock
        self._cached: tuple[Secret, float] | None = None

    def current_token(self) -> Secret:
        """The token the next request carries (signing a new one when needed)."""
        now = self._clock.time()
        if self.reuse and self._cached is not None:
            token, expires = self._cached
            if expires - now > self.refresh_margin:
                return token
        token = self.signer.sign(now)
        if self.reuse:
            self._cached = (token, self.signer.expiry(now))
        return token

    def auth_flow(
        self, request: httpx2.Request
    ) -> Generator[httpx2.Request, httpx2.Response, None]:
        value = self.current_token().reveal()
        request.headers[self.header] = f"{self.scheme} {value}" if self.scheme else value
        yield request

    def __repr__(self) -> str:
        return f"SignedJwtAuth({self.signer!r}, reuse={self.reuse})"

"""The OAuth 2.0 server of the emulated org: ``/services/oauth2/token`` and ``/authorize``.

Grants: JWT bearer (RS256 assertion checked against the app's certificate: ``iss``, ``sub``,
``aud``, ``exp``), refresh token (optionally rotating), client credentials (run-as user),
authorization code with PKCE, and username-password. Success bodies carry what Salesforce sends:
``access_token``, ``signature``, ``scope``, ``instance_url``, ``id``, ``token_type``,
``issued_at`` (milliseconds, as a string) and ``refresh_token`` where the flow grants one, and
never ``expires_in``. Failures are 400 ``{"error", "error_description"}``.

Error descriptions quoted by public sources are used verbatim ("authentication failure",
"expired access/refresh token", "audience is invalid", "user hasn't approved this consumer");
the others ("invalid assertion", "expired assertion", "invalid code verifier") are this
emulator's wording for the same ``error`` codes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from connectors.clock import Clock

from .config import ConnectedApp, EmulatedUser, SalesforceEmulatorConfig
from .sessions import RefreshGrant, Session, SessionStore

__all__ = ["AuthCode", "OAuthReply", "OAuthServer", "public_key_from_pem"]

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_CODE_LIFETIME = 900.0


@dataclass(frozen=True, slots=True)
class OAuthReply:
    """An HTTP answer of the OAuth endpoints: status, JSON body or redirect location."""

    status: int
    body: dict[str, str] | None = None
    location: str | None = None


@dataclass
class AuthCode:
    """An authorization code waiting to be exchanged."""

    code: str
    consumer_key: str
    username: str
    redirect_uri: str
    scopes: tuple[str, ...]
    challenge: str | None
    challenge_method: str
    issued_at: float
    used: bool = False


def public_key_from_pem(pem: str) -> RSAKey:
    """An RSA verification key from a certificate or public-key PEM."""
    data = pem.encode()
    if b"BEGIN CERTIFICATE" in data:
        public = x509.load_pem_x509_certificate(data).public_key()
        data = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    return RSAKey.import_key(data)


def _error(error: str, description: str) -> OAuthReply:
    return OAuthReply(400, {"error": error, "error_description": description})


class OAuthServer:
    """Token issuance for the emulated org."""

    def __init__(
        self,
        config: SalesforceEmulatorConfig,
        sessions: SessionStore,
        clock: Clock,
        user_ids: Mapping[str, str],
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.clock = clock
        self.user_ids = user_ids
        self.apps: dict[str, ConnectedApp] = {}
        self.users: dict[str, EmulatedUser] = {}
        self._keys: dict[str, RSAKey] = {}
        self.codes: dict[str, AuthCode] = {}
        self.token_requests = 0
        for app in config.connected_apps:
            self.add_app(app)
        for user in config.users:
            self.users[user.username.lower()] = user

    def add_app(self, app: ConnectedApp) -> None:
        """Register (or replace) a connected app."""
        self.apps[app.consumer_key] = app
        if app.public_key_pem:
            self._keys[app.consumer_key] = public_key_from_pem(app.public_key_pem)
        else:
            self._keys.pop(app.consumer_key, None)

    # -- token endpoint -----------------------------------------------------------------------

    def token(self, form: Mapping[str, str], authorization: str | None) -> OAuthReply:
        """Handle ``POST /services/oauth2/token``."""
        self.token_requests += 1
        grant_type = form.get("grant_type", "")
        if grant_type == JWT_BEARER:
            return self._jwt_bearer(form.get("assertion", ""))
        client_id, client_secret = form.get("client_id", ""), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip()).decode()
            except (binascii.Error, UnicodeDecodeError):
                return _error("invalid_client", "invalid client credentials")
            client_id, _, client_secret = decoded.partition(":")
        if grant_type == "refresh_token":
            return self._refresh(form.get("refresh_token", ""), client_id, client_secret)
        if grant_type == "client_credentials":
            return self._client_credentials(client_id, client_secret)
        if grant_type == "authorization_code":
            return self._authorization_code(form, client_id, client_secret)
        if grant_type == "password":
            return self._password(form, client_id, client_secret)
        return _error("unsupported_grant_type", "grant type not supported")

    def _app(
        self, client_id: str, client_secret: str | None, *, secret_required: bool
    ) -> ConnectedApp | OAuthReply:
        app = self.apps.get(client_id)
        if app is None:
            return _error("invalid_client_id", "client identifier invalid")
        if client_secret is None and not secret_required:
            return app
        if not hmac.compare_digest((client_secret or "").encode(), app.consumer_secret.encode()):
            return _error("invalid_client", "invalid client credentials")
        return app

    def _user(self, username: str) -> EmulatedUser | None:
        return self.users.get(username.lower())

    def _jwt_bearer(self, assertion: str) -> OAuthReply:
        claims = _unverified_claims(assertion)
        if claims is None:
            return _error("invalid_grant", "invalid assertion")
        app = self.apps.get(str(claims.get("iss", "")))
        if app is None:
            return _error("invalid_client_id", "client identifier invalid")
        key = self._keys.get(app.consumer_key)
        if key is None:
            return _error("invalid_grant", "invalid assertion")
        try:
            verified = jwt.decode(assertion, key, algorithms=["RS256"]).claims
        except (JoseError, ValueError, TypeError, KeyError):
            return _error("invalid_grant", "invalid assertion")
        aud = verified.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if not any(a in self.config.jwt_audiences for a in audiences):
            return _error("invalid_grant", "audience is invalid")
        exp = verified.get("exp")
        now = self.clock.time()
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            return _error("invalid_grant", "invalid assertion")
        if exp <= now:
            return _error("invalid_grant", "expired assertion")
        if exp > now + self.config.jwt_max_lifetime:
            return _error("invalid_grant", "invalid assertion")
        user = self._user(str(verified.get("sub", "")))
        if user is None or (
            app.approved_users is not None
            and user.username.lower() not in {u.lower() for u in app.approved_users}
        ):
            return _error("invalid_grant", "user hasn't approved this consumer")
        return self._success(app, user, app.scopes, refresh=None)

    def _refresh(self, token: str, client_id: str, client_secret: str | None) -> OAuthReply:
        app_or_error = self._app(client_id, client_secret, secret_required=False)
        if isinstance(app_or_error, OAuthReply):
            return app_or_error
        app = app_or_error
        grant = self.sessions.refresh_tokens.get(token)
        if grant is None or grant.revoked or grant.consumer_key != app.consumer_key:
            return _error("invalid_grant", "expired access/refresh token")
        if grant.rotated:
            # Reuse of a rotated-out token: Salesforce revokes the whole family.
            self.sessions.revoke_family(grant.family)
            return _error("invalid_grant", "expired access/refresh token")
        user = self._user(grant.username)
        if user is None:
            return _error("invalid_grant", "expired access/refresh token")
        grant.uses += 1
        new_grant: RefreshGrant | None = None
        if app.rotate_refresh_tokens:
            grant.rotated = True
            new_grant = self.sessions.issue_refresh(
                user_id=grant.user_id,
                username=grant.username,
                consumer_key=app.consumer_key,
                scopes=grant.scopes,
                family=grant.family,
            )
        return self._success(app, user, grant.scopes, refresh=new_grant, family=grant.family)

    def _client_credentials(self, client_id: str, client_secret: str | None) -> OAuthReply:
        app_or_error = self._app(client_id, client_secret or "", secret_required=True)
        if isinstance(app_or_error, OAuthReply):
            return app_or_error
        app = app_or_error
        user = self._user(app.client_credentials_user or "")
        if user is None:
            return _error("invalid_grant", "no client credentials user enabled")
        return self._success(app, user, app.scopes, refresh=None)

    def _password(
        self, form: Mapping[str, str], client_id: str, client_secret: str | None
    ) -> OAuthReply:
        app_or_error = self._app(client_id, client_secret or "", secret_required=True)
        if isinstance(app_or_error, OAuthReply):
            return app_or_error
        app = app_or_error
        user = self._user(form.get("username", ""))
        expected = (user.password + user.security_token) if user else ""
        given = form.get("password", "")
        if (
            user is None
            or not app.allow_password_flow
            or not hmac.compare_digest(given.encode(), expected.encode())
        ):
            return _error("invalid_grant", "authentication failure")
        return self._success(app, user, app.scopes, refresh=None)

    def _authorization_code(
        self, form: Mapping[str, str], client_id: str, client_secret: str | None
    ) -> OAuthReply:
        app_or_error = self._app(client_id, client_secret, secret_required=False)
        if isinstance(app_or_error, OAuthReply):
            return app_or_error
        app = app_or_error
        entry = self.codes.get(form.get("code", ""))
        if (
            entry is None
            or entry.used
            or entry.consumer_key != app.consumer_key
            or self.clock.monotonic() - entry.issued_at > _CODE_LIFETIME
        ):
            return _error("invalid_grant", "expired authorization code")
        if form.get("redirect_uri", entry.redirect_uri) != entry.redirect_uri:
            return _error("invalid_grant", "redirect_uri mismatch")
        if entry.challenge is not None:
            verifier = form.get("code_verifier", "")
            computed = (
                base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                .rstrip(b"=")
                .decode()
                if entry.challenge_method == "S256"
                else verifier
            )
            if not verifier or not hmac.compare_digest(computed, entry.challenge):
                return _error("invalid_grant", "invalid code verifier")
        entry.used = True
        user = self._user(entry.username)
        if user is None:  # pragma: no cover - codes are only issued for known users
            return _error("invalid_grant", "expired authorization code")
        refresh = None
        if "refresh_token" in entry.scopes or "offline_access" in entry.scopes:
            refresh = self.sessions.issue_refresh(
                user_id=self.user_ids[user.username.lower()],
                username=user.username,
                consumer_key=app.consumer_key,
                scopes=entry.scopes,
            )
        return self._success(
            app, user, entry.scopes, refresh=refresh, family=refresh.family if refresh else None
        )

    def _success(
        self,
        app: ConnectedApp,
        user: EmulatedUser,
        scopes: tuple[str, ...],
        *,
        refresh: RefreshGrant | None,
        family: str | None = None,
    ) -> OAuthReply:
        user_id = self.user_ids[user.username.lower()]
        session: Session = self.sessions.issue(
            user_id=user_id,
            username=user.username,
            consumer_key=app.consumer_key,
            scopes=scopes,
            family=family,
        )
        identity = f"{self.config.login_url}/id/{self.config.org_id}/{user_id[:15]}"
        issued_at = str(int(self.clock.time() * 1000))
        key = (app.consumer_secret or app.consumer_key).encode()
        signature = base64.b64encode(
            hmac.new(key, (identity + issued_at).encode(), hashlib.sha256).digest()
        ).decode()
        body = {"access_token": session.token}
        if refresh is not None:
            body["refresh_token"] = refresh.token
        body.update(
            signature=signature,
            scope=" ".join(scopes),
            instance_url=self.config.instance_url,
            id=identity,
            token_type="Bearer",  # noqa: S106 - the token type, not a secret
            issued_at=issued_at,
        )
        return OAuthReply(200, body)

    # -- authorize endpoint -------------------------------------------------------------------

    def authorize(self, params: Mapping[str, str]) -> OAuthReply:
        """Handle ``GET /services/oauth2/authorize``: approve at once for the configured user."""
        app = self.apps.get(params.get("client_id", ""))
        if app is None:
            return _error("invalid_client_id", "client identifier invalid")
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in app.redirect_uris:
            return _error("redirect_uri_mismatch", "redirect_uri must match configuration")
        state = params.get("state")

        def redirect(values: dict[str, str]) -> OAuthReply:
            if state is not None:
                values["state"] = state
            separator = "&" if "?" in redirect_uri else "?"
            return OAuthReply(302, location=f"{redirect_uri}{separator}{urlencode(values)}")

        if params.get("response_type") != "code":
            return redirect(
                {
                    "error": "unsupported_response_type",
                    "error_description": "response type not supported",
                }
            )
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method", "S256" if challenge else "")
        if challenge is None and app.require_pkce:
            return redirect(
                {"error": "invalid_request", "error_description": "missing required code challenge"}
            )
        if challenge is not None and method not in ("S256", "plain"):
            return redirect(
                {"error": "invalid_request", "error_description": "invalid code challenge method"}
            )
        user = self._user(app.auto_approve_user or "")
        if user is None:
            return redirect(
                {"error": "access_denied", "error_description": "end-user denied authorization"}
            )
        requested = tuple(params.get("scope", "").split()) or app.scopes
        scopes = tuple(s for s in requested if s in app.scopes) or app.scopes
        code = "aPrx" + secrets.token_urlsafe(48)
        self.codes[code] = AuthCode(
            code,
            app.consumer_key,
            user.username,
            redirect_uri,
            scopes,
            challenge,
            method,
            self.clock.monotonic(),
        )
        return redirect({"code": code})


def _unverified_claims(assertion: str) -> dict[str, object] | None:
    parts = assertion.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None

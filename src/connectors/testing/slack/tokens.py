"""Token checks, issuance, OAuth code exchange and token rotation, as Slack does them.

- No token: ``not_authed``; unknown: ``invalid_auth``; revoked: ``token_revoked``; a rotating
  token past its expiry: ``token_expired``.
- An app without rotation gets non-expiring ``xoxb-``/``xoxp-`` tokens. With rotation, access
  tokens are ``xoxe.xoxb-...`` (``xoxe.xoxp-...``) expiring after ``token_lifetime`` (12 h by
  default) with single-use ``xoxe-1-...`` refresh tokens: ``grant_type=refresh_token`` returns a
  new pair and burns the old refresh token; using it again is ``invalid_refresh_token``. The old
  access token stays valid until it expires, as on Slack.

Token values are deterministic (a counter and a hash), so test runs repeat exactly.
"""

# token_type is Slack's field name ("bot"/"user"), not a secret.
# ruff: noqa: S105, S106

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from connectors.testing.slack.envelope import SlackApiError
from connectors.testing.slack.state import (
    JSONObject,
    OAuthCode,
    RefreshGrant,
    SlackApp,
    SlackState,
    Token,
)

__all__ = ["IssuedToken", "authenticate", "exchange_code", "issue_token", "refresh"]


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A freshly issued access token and, for rotating apps, its refresh token and lifetime."""

    access_token: str
    token_type: str
    scopes: frozenset[str]
    refresh_token: str | None = None
    expires_in: int | None = None

    def __repr__(self) -> str:
        return f"IssuedToken(type={self.token_type}, rotating={self.refresh_token is not None})"


def authenticate(state: SlackState, value: str | None, now: float) -> Token:
    """The token record for ``value``, or the ``ok: false`` error Slack gives."""
    if not value:
        raise SlackApiError("not_authed")
    token = state.tokens.get(value)
    if token is None:
        raise SlackApiError("invalid_auth")
    if token.revoked:
        raise SlackApiError("token_revoked")
    if token.expires_at is not None and now >= token.expires_at:
        raise SlackApiError("token_expired")
    return token


def _value(state: SlackState, prefix: str, app_id: str) -> str:
    serial = state.next_id(prefix, 6)
    digest = hashlib.sha256(f"{app_id}:{serial}".encode()).hexdigest()[:24]
    return f"{prefix}-{serial[len(prefix) :]}-{digest}"


def issue_token(
    state: SlackState,
    app: SlackApp,
    *,
    team_id: str,
    user_id: str,
    token_type: str,
    scopes: frozenset[str],
    now: float,
    rotating: bool | None = None,
    lifetime: float | None = None,
) -> IssuedToken:
    """Create an access token (and a refresh token when the app rotates)."""
    rotate = app.token_rotation if rotating is None else rotating
    kind = "xoxb" if token_type == "bot" else "xoxp"
    access = _value(state, kind, app.app_id)
    life = app.token_lifetime if lifetime is None else lifetime
    refresh_value: str | None = None
    if rotate:
        access = f"xoxe.{access}"
        refresh_value = "xoxe-1-" + _value(state, "r", app.app_id)[2:]
        state.refresh_grants[refresh_value] = RefreshGrant(
            value=refresh_value,
            app_id=app.app_id,
            token_type=token_type,
            team_id=team_id,
            user_id=user_id,
            scopes=scopes,
            bot_id=app.bot_id if token_type == "bot" else None,
        )
    state.tokens[access] = Token(
        value=access,
        token_type=token_type,
        team_id=team_id,
        user_id=user_id,
        app_id=app.app_id,
        scopes=scopes,
        bot_id=app.bot_id if token_type == "bot" else None,
        expires_at=now + life if rotate else None,
    )
    return IssuedToken(
        access_token=access,
        token_type=token_type,
        scopes=scopes,
        refresh_token=refresh_value,
        expires_in=int(life) if rotate else None,
    )


def _team(state: SlackState, team_id: str) -> JSONObject:
    ws = state.workspaces[team_id]
    return {"id": ws.id, "name": ws.name}


def _token_fields(issued: IssuedToken) -> JSONObject:
    body: JSONObject = {
        "scope": ",".join(sorted(issued.scopes)),
        "token_type": issued.token_type,
        "access_token": issued.access_token,
    }
    if issued.refresh_token is not None:
        body["refresh_token"] = issued.refresh_token
        body["expires_in"] = issued.expires_in
    return body


def exchange_code(
    state: SlackState, app: SlackApp, code: str | None, redirect_uri: str | None, now: float
) -> JSONObject:
    """``oauth.v2.access`` with a code: install the app, answer like Slack."""
    grant = state.oauth_codes.get(code or "")
    if grant is None or grant.used or grant.client_id != app.client_id or now >= grant.expires_at:
        raise SlackApiError("invalid_code")
    if grant.redirect_uri is not None and redirect_uri not in (None, grant.redirect_uri):
        raise SlackApiError("bad_redirect_uri")
    grant.used = True
    return _install(state, app, grant, now)


def _install(state: SlackState, app: SlackApp, grant: OAuthCode, now: float) -> JSONObject:
    authed_user: JSONObject = {"id": grant.user_id}
    if grant.user_scopes:
        user_token = issue_token(
            state,
            app,
            team_id=grant.team_id,
            user_id=grant.user_id,
            token_type="user",
            scopes=grant.user_scopes,
            now=now,
        )
        authed_user.update(_token_fields(user_token))
    body: JSONObject = {"app_id": app.app_id}
    if grant.scopes:
        bot = issue_token(
            state,
            app,
            team_id=grant.team_id,
            user_id=app.bot_user_id,
            token_type="bot",
            scopes=grant.scopes,
            now=now,
        )
        body.update(_token_fields(bot))
        body["bot_user_id"] = app.bot_user_id
    body.update(
        {
            "authed_user": authed_user,
            "team": _team(state, grant.team_id),
            "enterprise": None,
            "is_enterprise_install": False,
        }
    )
    return body


def refresh(state: SlackState, app: SlackApp, refresh_token: str | None, now: float) -> JSONObject:
    """``oauth.v2.access`` with ``grant_type=refresh_token``: a new pair; the old one is burnt."""
    grant = state.refresh_grants.get(refresh_token or "")
    if grant is None or grant.used or grant.app_id != app.app_id:
        raise SlackApiError("invalid_refresh_token")
    grant.used = True
    issued = issue_token(
        state,
        app,
        team_id=grant.team_id,
        user_id=grant.user_id,
        token_type=grant.token_type,
        scopes=grant.scopes,
        now=now,
        rotating=True,
    )
    body: JSONObject = {"app_id": app.app_id, **_token_fields(issued)}
    if grant.token_type == "bot":
        body["bot_user_id"] = app.bot_user_id
    body.update(
        {
            "team": _team(state, grant.team_id),
            "enterprise": None,
            "is_enterprise_install": False,
        }
    )
    return body

"""``auth.test``, ``auth.revoke`` and ``oauth.v2.access`` (code exchange and token rotation)."""

from __future__ import annotations

from connectors.testing.slack.api import MethodContext, handler
from connectors.testing.slack.envelope import SlackApiError
from connectors.testing.slack.state import JSONObject, SlackApp
from connectors.testing.slack.tokens import exchange_code, refresh

__all__: list[str] = []


@handler("auth.test")
def auth_test(ctx: MethodContext) -> JSONObject:
    token = ctx.auth
    ws = ctx.workspace
    user = ws.users.get(token.user_id)
    body: JSONObject = {
        "url": ws.url,
        "team": ws.name,
        "user": user.name if user else token.user_id,
        "team_id": ws.id,
        "user_id": token.user_id,
    }
    if token.bot_id:
        body["bot_id"] = token.bot_id
    body["is_enterprise_install"] = False
    return body


@handler("auth.revoke")
def auth_revoke(ctx: MethodContext) -> JSONObject:
    token = ctx.auth
    testing = ctx.flag("test")
    if not testing:
        token.revoked = True
    return {"revoked": not testing}


def _client(ctx: MethodContext) -> SlackApp:
    client_id = ctx.text("client_id")
    client_secret = ctx.text("client_secret")
    if ctx.basic_auth is not None and client_id is None:
        client_id, client_secret = ctx.basic_auth
    app = ctx.emulator.state.app_by_client_id(client_id) if client_id else None
    if app is None:
        raise SlackApiError("invalid_client_id")
    if not ctx.emulator.rotation.accepts_client_secret(app, client_secret):  # old one too
        raise SlackApiError("bad_client_secret")
    return app


@handler("oauth.v2.access", authenticated=False)
def oauth_v2_access(ctx: MethodContext) -> JSONObject:
    app = _client(ctx)
    now = ctx.emulator.clock.time()
    state = ctx.emulator.state
    grant_type = ctx.text("grant_type")
    if grant_type == "refresh_token":
        return refresh(state, app, ctx.text("refresh_token"), now)
    if grant_type not in (None, "authorization_code"):
        raise SlackApiError("invalid_grant_type")
    return exchange_code(state, app, ctx.text("code"), ctx.text("redirect_uri"), now)

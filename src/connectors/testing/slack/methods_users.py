"""``users.list``, ``users.info``, ``users.lookupByEmail``."""

from __future__ import annotations

from connectors.testing.slack.api import MethodContext, handler
from connectors.testing.slack.envelope import SlackApiError, decode_cursor, encode_cursor
from connectors.testing.slack.state import JSONObject

__all__: list[str] = []


@handler("users.list")
def users_list(ctx: MethodContext) -> JSONObject:
    limit = ctx.integer("limit", 0)
    members = sorted(ctx.workspace.users.values(), key=lambda u: u.id)
    start = 0
    cursor = ctx.text("cursor")
    if cursor:
        key = decode_cursor(cursor, "user")
        start = next((i for i, u in enumerate(members) if u.id >= key), len(members))
    # Slack: no limit returns everything at once (discouraged for large workspaces).
    page = members[start : start + limit] if limit > 0 else members[start:]
    rest = members[start + len(page) :]
    return {
        "members": [u.to_json() for u in page],
        "cache_ts": int(ctx.emulator.clock.time()),
        "response_metadata": {"next_cursor": encode_cursor("user", rest[0].id) if rest else ""},
    }


@handler("users.info")
def users_info(ctx: MethodContext) -> JSONObject:
    user_id = ctx.text("user")
    user = ctx.workspace.users.get(user_id) if user_id else None
    if user is None:
        raise SlackApiError("user_not_found")
    return {"user": user.to_json()}


@handler("users.lookupByEmail")
def lookup_by_email(ctx: MethodContext) -> JSONObject:
    email = (ctx.text("email") or "").strip().lower()
    for user in ctx.workspace.users.values():
        if user.email is not None and user.email.lower() == email and not user.deleted:
            return {"user": user.to_json()}
    raise SlackApiError("users_not_found")

"""``conversations.*``: listing, reading history and threads, channel info, joining.

Paging is Slack's: ``limit`` and an opaque ``cursor``, ``response_metadata.next_cursor`` empty
on the last page. History is newest first and holds top-level messages (and broadcast replies);
``oldest``/``latest`` bound the window, exclusive unless ``inclusive``. A bot must be a member
to read a channel's history (``not_in_channel``); private channels it is not in do not exist
for it (``channel_not_found``). Apps that are not Marketplace-approved get Slack's 2025 limits
on history and replies (``limit`` at most 15; the tier drops to 1 per minute in the emulator).
"""

# token_type is Slack's field name ("bot"/"user"), not a secret.
# ruff: noqa: S105

from __future__ import annotations

import bisect

from connectors.testing.slack.api import MethodContext, handler
from connectors.testing.slack.envelope import SlackApiError, decode_cursor, encode_cursor
from connectors.testing.slack.state import Channel, JSONObject, Message, format_ts, parse_ts

__all__ = ["NON_MARKETPLACE_LIMIT"]

NON_MARKETPLACE_LIMIT = 15
_OPEN_END = 1 << 62
_TYPE_SCOPES = {
    "public_channel": "channels:read",
    "private_channel": "groups:read",
    "mpim": "mpim:read",
    "im": "im:read",
}


def _page_limit(ctx: MethodContext, default: int, maximum: int) -> int:
    limit = ctx.integer("limit", default)
    if not ctx.emulator.config.marketplace_app:
        maximum = min(maximum, NON_MARKETPLACE_LIMIT)
        default = min(default, NON_MARKETPLACE_LIMIT)
        if "limit" not in ctx.args or ctx.args.get("limit") in ("", None):
            limit = default
    if limit <= 0:
        limit = default
    return min(limit, maximum)


def _window(ctx: MethodContext) -> tuple[int, int, bool]:
    raw_oldest = ctx.text("oldest") or "0"
    oldest = parse_ts(raw_oldest)
    if oldest is None:
        raise SlackApiError("invalid_ts_oldest")
    raw_latest = ctx.text("latest")
    # Without ``latest`` the window is open-ended ("now"; the emulator's ts may run ahead of a
    # frozen test clock, so "now" means "no upper bound").
    latest = parse_ts(raw_latest) if raw_latest not in (None, "now") else _OPEN_END
    if latest is None:
        raise SlackApiError("invalid_ts_latest")
    return oldest, latest, ctx.flag("inclusive")


def _in_window(ts: int, oldest: int, latest: int, inclusive: bool) -> bool:
    if inclusive:
        return oldest <= ts <= latest
    return oldest < ts < latest


def _metadata(next_cursor: str) -> JSONObject:
    return {"next_cursor": next_cursor}


@handler("conversations.list")
def conversations_list(ctx: MethodContext) -> JSONObject:
    raw_types = ctx.text("types") or "public_channel"
    types = [t.strip() for t in raw_types.split(",") if t.strip()]
    if not types or any(t not in _TYPE_SCOPES for t in types):
        raise SlackApiError("invalid_types")
    missing = [_TYPE_SCOPES[t] for t in types if _TYPE_SCOPES[t] not in ctx.auth.scopes]
    if missing:
        raise SlackApiError(
            "missing_scope", needed=",".join(missing), provided=",".join(sorted(ctx.auth.scopes))
        )
    limit = ctx.integer("limit", 100, error="invalid_limit")
    if limit < 1 or limit > 1000:
        raise SlackApiError("invalid_limit")
    exclude_archived = ctx.flag("exclude_archived")
    viewer = ctx.auth.user_id
    visible = [
        c
        for c in sorted(ctx.workspace.channels.values(), key=lambda c: c.id)
        if (("private_channel" in types) if c.is_private else ("public_channel" in types))
        and (not c.is_private or viewer in c.members)
        and not (exclude_archived and c.is_archived)
    ]
    start = 0
    cursor = ctx.text("cursor")
    if cursor:
        key = decode_cursor(cursor, "team")
        start = next((i for i, c in enumerate(visible) if c.id >= key), len(visible))
    page = visible[start : start + limit]
    rest = visible[start + limit :]
    next_cursor = encode_cursor("team", rest[0].id) if rest else ""
    return {
        "channels": [c.to_json(viewer) for c in page],
        "response_metadata": _metadata(next_cursor),
    }


def _readable(ctx: MethodContext) -> Channel:
    channel = ctx.channel()
    ctx.require_channel_scope(channel, "channels:history", "groups:history")
    return channel


@handler("conversations.history")
def history(ctx: MethodContext) -> JSONObject:
    channel = _readable(ctx)
    if ctx.auth.token_type == "bot" and ctx.auth.user_id not in channel.members:
        raise SlackApiError("not_in_channel")
    oldest, latest, inclusive = _window(ctx)
    limit = _page_limit(ctx, 100, 999)
    cursor = ctx.text("cursor")
    if cursor:
        key = decode_cursor(cursor, "next_ts")
        if not key.isdigit():
            raise SlackApiError("invalid_cursor")
        latest, inclusive_top = int(key), True
    else:
        inclusive_top = inclusive
    messages = channel.messages
    lo = bisect.bisect_left(messages, oldest, key=lambda m: m.ts)
    hi = bisect.bisect_right(messages, latest, key=lambda m: m.ts)
    page: list[Message] = []
    has_more = False
    next_cursor = ""
    for index in range(hi - 1, lo - 1, -1):
        message = messages[index]
        if message.ts == latest and not inclusive_top:
            continue
        if message.ts == oldest and not inclusive:
            continue
        if message.is_reply and not message.reply_broadcast:
            continue
        if len(page) == limit:
            has_more = True
            next_cursor = encode_cursor("next_ts", str(message.ts))
            break
        page.append(message)
    return {
        "messages": [m.to_json() for m in page],
        "has_more": has_more,
        "pin_count": 0,
        "channel_actions_ts": None,
        "channel_actions_count": 0,
        "response_metadata": _metadata(next_cursor),
    }


@handler("conversations.replies")
def replies(ctx: MethodContext) -> JSONObject:
    channel = _readable(ctx)
    raw = ctx.required("ts")
    ts = parse_ts(raw)
    found = channel.find(ts) if ts is not None else None
    if found is None:
        raise SlackApiError("thread_not_found")
    parent = channel.find(found.thread_ts) if found.is_reply and found.thread_ts else found
    if parent is None:
        raise SlackApiError("thread_not_found")
    oldest, latest, inclusive = _window(ctx)
    limit = _page_limit(ctx, 1000, 1000)
    thread = [parent, *(m for t in parent.reply_ts if (m := channel.find(t)) is not None)]
    selected = [m for m in thread if _in_window(m.ts, oldest, latest, inclusive)]
    cursor = ctx.text("cursor")
    if cursor:
        key = decode_cursor(cursor, "next_ts")
        if not key.isdigit():
            raise SlackApiError("invalid_cursor")
        selected = [m for m in selected if m.ts >= int(key)]
    page, rest = selected[:limit], selected[limit:]
    rendered = []
    for message in page:
        body = message.to_json()
        if message is parent and parent.reply_ts:
            body["last_read"] = format_ts(parent.reply_ts[-1])
            body["unread_count"] = 0
        rendered.append(body)
    return {
        "messages": rendered,
        "has_more": bool(rest),
        "response_metadata": _metadata(encode_cursor("next_ts", str(rest[0].ts)) if rest else ""),
    }


@handler("conversations.info")
def info(ctx: MethodContext) -> JSONObject:
    channel = ctx.channel()
    ctx.require_channel_scope(channel, "channels:read", "groups:read")
    body = channel.to_json(ctx.auth.user_id)
    if not ctx.flag("include_num_members"):
        body.pop("num_members", None)
    body["is_read_only"] = False
    body["last_read"] = format_ts(channel.last_ts)
    if ctx.flag("include_locale"):
        body["locale"] = "en-US"
    return {"channel": body}


@handler("conversations.join")
def join(ctx: MethodContext) -> JSONObject:
    channel = ctx.channel()
    if channel.is_private:
        raise SlackApiError("method_not_supported_for_channel_type")
    if channel.is_archived:
        raise SlackApiError("is_archived")
    user = ctx.auth.user_id
    if user in channel.members:
        ctx.warnings.append("already_in_channel")
    channel.members.add(user)
    return {"channel": channel.to_json(user)}

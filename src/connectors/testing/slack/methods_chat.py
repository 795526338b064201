"""``chat.*`` and ``reactions.add``: posting, editing, deleting and reacting to messages.

Content rules as Slack documents them: at most 50 blocks (more is ``invalid_blocks``), at most
100 attachments (``too_many_attachments``), ``text`` over 40,000 characters is truncated by
chat.postMessage with the ``message_truncated`` warning and refused by chat.update and
chat.postEphemeral with ``msg_too_long``; ``markdown_text`` excludes ``text`` and ``blocks``.
chat.postMessage is limited to about one message per second per channel, with a short burst.
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.testing.slack.api import MethodContext, handler
from connectors.testing.slack.envelope import SlackApiError
from connectors.testing.slack.state import Channel, JSONObject, Message, format_ts, parse_ts

__all__ = ["MAX_ATTACHMENTS", "MAX_BLOCKS", "MAX_TEXT"]

MAX_TEXT = 40_000
MAX_MARKDOWN = 12_000
MAX_BLOCKS = 50
MAX_ATTACHMENTS = 100
_TRUNCATED = (
    "[WARN] Your message was truncated but still posted. "
    "The `text` field accepts up to 40,000 characters."
)


@dataclass(slots=True)
class _Content:
    text: str
    blocks: list[object] | None
    attachments: list[object] | None


def _content(ctx: MethodContext, *, truncate: bool) -> _Content:
    markdown = ctx.text("markdown_text")
    text = ctx.text("text")
    blocks = ctx.json_list("blocks", error="invalid_blocks_format")
    attachments = ctx.json_list("attachments", error="invalid_attachments")
    if markdown is not None:
        if text is not None or blocks is not None:
            raise SlackApiError("markdown_text_conflict")
        if len(markdown) > MAX_MARKDOWN:
            raise SlackApiError("msg_too_long")
        text = markdown
    if blocks is not None:
        if len(blocks) > MAX_BLOCKS:
            raise SlackApiError(
                "invalid_blocks",
                messages=[
                    f"[ERROR] no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]"
                ],
            )
        for index, block in enumerate(blocks):
            if not isinstance(block, dict) or not isinstance(block.get("type"), str):
                raise SlackApiError(
                    "invalid_blocks",
                    messages=[
                        f"[ERROR] missing required field: type [json-pointer:/blocks/{index}]"
                    ],
                )
    if attachments is not None and len(attachments) > MAX_ATTACHMENTS:
        raise SlackApiError("too_many_attachments")
    if text is None and not blocks and not attachments:
        raise SlackApiError("no_text")
    text = text or ""
    if len(text) > MAX_TEXT:
        if not truncate:
            raise SlackApiError("msg_too_long")
        text = text[:MAX_TEXT]
        ctx.warnings.append("message_truncated")
        ctx.messages.append(_TRUNCATED)
    return _Content(text=text, blocks=blocks, attachments=attachments)


def _require_member(ctx: MethodContext, channel: Channel) -> None:
    token = ctx.auth
    if token.user_id in channel.members:
        return
    if not channel.is_private and "chat:write.public" in token.scopes:
        return
    raise SlackApiError("not_in_channel")


def _message_ts(ctx: MethodContext, channel: Channel) -> int:
    return max(ctx.now_us(), channel.last_ts + 1)


def _find(ctx: MethodContext, channel: Channel, arg: str, missing: str) -> Message:
    raw = ctx.text(arg)
    ts = parse_ts(raw) if raw is not None else None
    message = channel.find(ts) if ts is not None else None
    if message is None:
        raise SlackApiError(missing)
    return message


@handler("chat.postMessage")
def post_message(ctx: MethodContext) -> JSONObject:
    channel = ctx.channel(allow_names=True)
    if channel.is_archived:
        raise SlackApiError("is_archived")
    _require_member(ctx, channel)
    content = _content(ctx, truncate=True)
    ctx.emulator.limit_post_message(ctx.auth.team_id, channel.id)
    token = ctx.auth
    thread_ts: int | None = None
    parent: Message | None = None
    raw_thread = ctx.text("thread_ts")
    if raw_thread is not None:
        thread_ts = parse_ts(raw_thread)
        parent = channel.find(thread_ts) if thread_ts is not None else None
        if parent is not None and parent.is_reply:
            # Replying to a reply threads under its parent, as Slack does.
            thread_ts = parent.thread_ts
            parent = channel.find(thread_ts) if thread_ts is not None else None
    username = ctx.text("username")
    message = Message(
        ts=_message_ts(ctx, channel),
        user=token.user_id,
        text=content.text,
        team=token.team_id,
        bot_id=token.bot_id,
        app_id=token.app_id if token.bot_id else None,
        subtype="bot_message" if username else None,
        username=username,
        blocks=content.blocks,
        attachments=content.attachments,
        thread_ts=thread_ts,
        reply_broadcast=ctx.flag("reply_broadcast"),
    )
    channel.add(message)
    if parent is not None:
        if parent.thread_ts is None:
            parent.thread_ts = parent.ts
        parent.reply_ts.append(message.ts)
    return {"channel": channel.id, "ts": format_ts(message.ts), "message": message.to_json()}


@handler("chat.update")
def update(ctx: MethodContext) -> JSONObject:
    channel = ctx.channel()
    message = _find(ctx, channel, "ts", "message_not_found")
    if message.user != ctx.auth.user_id:
        raise SlackApiError("cant_update_message")
    content = _content(ctx, truncate=False)
    message.text = content.text
    if content.blocks is not None:
        message.blocks = content.blocks
    if content.attachments is not None:
        message.attachments = content.attachments
    message.edited = ctx.now_us()
    body = message.to_json()
    return {
        "channel": channel.id,
        "ts": format_ts(message.ts),
        "text": message.text,
        "message": body,
    }


@handler("chat.delete")
def delete(ctx: MethodContext) -> JSONObject:
    channel = ctx.channel()
    message = _find(ctx, channel, "ts", "message_not_found")
    if message.user != ctx.auth.user_id:
        raise SlackApiError("cant_delete_message")
    channel.remove(message.ts)
    if message.is_reply and message.thread_ts is not None:
        parent = channel.find(message.thread_ts)
        if parent is not None and message.ts in parent.reply_ts:
            parent.reply_ts.remove(message.ts)
    return {"channel": channel.id, "ts": format_ts(message.ts)}


@handler("chat.postEphemeral")
def post_ephemeral(ctx: MethodContext) -> JSONObject:
    channel = ctx.channel(allow_names=True)
    user = ctx.required("user")
    if channel.is_archived:
        raise SlackApiError("is_archived")
    _require_member(ctx, channel)
    if user not in channel.members:
        raise SlackApiError("user_not_in_channel")
    content = _content(ctx, truncate=False)
    token = ctx.auth
    message = Message(
        ts=ctx.now_us(),
        user=token.user_id,
        text=content.text,
        team=token.team_id,
        bot_id=token.bot_id,
        blocks=content.blocks,
        attachments=content.attachments,
    )
    ctx.emulator.state.ephemeral.append((channel.id, user, message))
    return {"message_ts": format_ts(message.ts)}


@handler("reactions.add")
def reactions_add(ctx: MethodContext) -> JSONObject:
    channel = ctx.channel()
    name = (ctx.text("name") or "").strip(":")
    if ctx.text("timestamp") is None:
        raise SlackApiError("no_item_specified")
    if not name or any(c.isspace() or c == ":" for c in name):
        raise SlackApiError("invalid_name")
    if channel.is_archived:
        raise SlackApiError("is_archived")
    message = _find(ctx, channel, "timestamp", "message_not_found")
    users = message.reactions.setdefault(name, [])
    if ctx.auth.user_id in users:
        raise SlackApiError("already_reacted")
    users.append(ctx.auth.user_id)
    return {}

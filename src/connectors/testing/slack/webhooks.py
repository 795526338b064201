"""Incoming webhooks: ``POST /services/<team>/<hook>/<secret>`` with Slack's plain-text answers.

Success is HTTP 200 with the body ``ok``. Errors are plain-text codes, as Slack sends them:
400 ``invalid_payload`` (not a JSON object, nor a form with a ``payload`` field), 400
``no_text`` (no ``text``, ``blocks`` or ``attachments``), 400 ``invalid_blocks``, 403
``invalid_token`` (wrong secret), 404 ``no_team`` / ``no_service`` (unknown URL), 404
``channel_not_found`` (the channel is gone), 410 ``channel_is_archived``, and 429 with
``Retry-After`` when the channel's one-message-per-second limit is exceeded.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from connectors.testing.slack.state import Message

if TYPE_CHECKING:
    from connectors.testing.slack.emulator import SlackEmulator

__all__ = ["receive_webhook"]


def _text(body: str, status: int, headers: dict[str, str] | None = None) -> Response:
    return PlainTextResponse(body, status_code=status, headers=headers)


async def _payload(request: Request) -> dict[str, object] | None:
    content_type = request.headers.get("content-type", "").lower()
    raw: str | bytes
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get("payload")
        await form.close()
        if not isinstance(value, str):
            return None
        raw = value
    else:
        raw = await request.body()
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


async def receive_webhook(request: Request, emulator: SlackEmulator) -> Response:
    """Handle one incoming-webhook POST."""
    team_id = request.path_params["team"]
    state = emulator.state
    if team_id not in state.workspaces:
        return _text("no_team", 404)
    hook_id = request.path_params["hook"]
    hook = next(
        (h for h in state.webhooks.values() if h.team_id == team_id and h.hook_id == hook_id),
        None,
    )
    if hook is None:
        return _text("no_service", 404)
    if hook.secret != request.path_params["secret"]:
        return _text("invalid_token", 403)
    payload = await _payload(request)
    if payload is None:
        return _text("invalid_payload", 400)
    text = payload.get("text")
    blocks = payload.get("blocks")
    attachments = payload.get("attachments")
    if not text and not blocks and not attachments:
        return _text("no_text", 400)
    if blocks is not None and (
        not isinstance(blocks, list)
        or len(blocks) > 50
        or not all(isinstance(b, dict) and isinstance(b.get("type"), str) for b in blocks)
    ):
        return _text("invalid_blocks", 400)
    ws = state.workspaces[team_id]
    channel = ws.channels.get(hook.channel_id)
    if channel is None:
        return _text("channel_not_found", 404)
    if channel.is_archived:
        return _text("channel_is_archived", 410)
    wait = emulator.post_message_wait(team_id, channel.id)
    if wait is not None:
        return _text("rate_limited", 429, {"Retry-After": emulator.retry_after(wait)})
    app = next(iter(state.apps.values()))
    message = Message(
        ts=max(int(emulator.clock.time() * 1_000_000), channel.last_ts + 1),
        user=app.bot_user_id,
        text=text if isinstance(text, str) else "",
        team=team_id,
        bot_id=hook.hook_id,
        app_id=app.app_id,
        subtype="bot_message",
        blocks=blocks if isinstance(blocks, list) else None,
        attachments=attachments if isinstance(attachments, list) else None,
    )
    channel.add(message)
    return _text("ok", 200)

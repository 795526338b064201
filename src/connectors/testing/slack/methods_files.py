"""The files upload v2 flow: get an upload URL, POST the bytes to it, complete the upload.

1. ``files.getUploadURLExternal`` (``filename``, ``length``) answers ``upload_url`` and
   ``file_id``; a ``length`` of 0 is ``missing_argument``, ``alt_txt`` over 1000 characters is
   ``alt_txt_too_large``.
2. ``POST <upload_url>`` with the raw bytes or a multipart form: HTTP 200 ``OK - <length>``
   in plain text (no token needed: the URL is the credential). Unknown ids get 404.
3. ``files.completeUploadExternal`` (``files`` as a JSON array of ``{"id", "title"}``) shares
   into ``channel_id`` (one channel ID) or ``channels`` (comma-separated IDs, at most 100). A
   channel *name* is not accepted: ``channel_id=general`` gives ``channel_not_found`` and
   ``channels=general`` gives ``invalid_channel``, exactly the trap slack_sdk users fall into.
   Sharing is asynchronous on Slack, so the returned file objects list no shares yet; the
   channel gets a message carrying the file.
"""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from connectors.testing.slack.api import MethodContext, handler
from connectors.testing.slack.envelope import SlackApiError
from connectors.testing.slack.state import (
    Channel,
    JSONObject,
    Message,
    SlackState,
    StoredFile,
    parse_ts,
)

__all__ = ["MAX_ALT_TXT", "MAX_SHARE_CHANNELS", "MAX_SNIPPET", "receive_upload"]

MAX_ALT_TXT = 1000
MAX_SNIPPET = 1_000_000
MAX_SHARE_CHANNELS = 100


@handler("files.getUploadURLExternal")
def get_upload_url(ctx: MethodContext) -> JSONObject:
    filename = ctx.required("filename")
    ctx.required("length")
    length = ctx.integer("length", 0)
    if length <= 0:
        raise SlackApiError("missing_argument")
    alt_txt = ctx.text("alt_txt")
    if alt_txt is not None and len(alt_txt) > MAX_ALT_TXT:
        raise SlackApiError("alt_txt_too_large")
    snippet_type = ctx.text("snippet_type")
    if snippet_type is not None and length > MAX_SNIPPET:
        raise SlackApiError("snippet_too_large")
    state = ctx.emulator.state
    token = ctx.auth
    stored = StoredFile(
        id=state.next_id("F"),
        team_id=token.team_id,
        user=token.user_id,
        filename=filename,
        length=length,
        created=int(ctx.emulator.clock.time()),
        alt_txt=alt_txt,
        snippet_type=snippet_type,
    )
    state.files[stored.id] = stored
    return {"upload_url": f"{ctx.base_url}upload/{stored.id}", "file_id": stored.id}


def _targets(ctx: MethodContext) -> list[Channel]:
    ws = ctx.workspace
    channel_id = ctx.text("channel_id")
    raw_channels = ctx.text("channels")
    targets: list[Channel] = []
    if channel_id is not None:
        found = ws.channels.get(channel_id)
        if found is None or (found.is_private and ctx.auth.user_id not in found.members):
            raise SlackApiError("channel_not_found")
        targets.append(found)
    if raw_channels is not None:
        ids = [c.strip() for c in raw_channels.split(",") if c.strip()]
        if len(ids) > MAX_SHARE_CHANNELS:
            raise SlackApiError("channels_limit_exceeded")
        for cid in ids:
            found = ws.channels.get(cid)
            if found is None or (found.is_private and ctx.auth.user_id not in found.members):
                raise SlackApiError("invalid_channel")
            targets.append(found)
    for target in targets:
        if ctx.auth.user_id not in target.members:
            raise SlackApiError("not_in_channel")
    return targets


def _files(ctx: MethodContext, state: SlackState) -> list[tuple[StoredFile, str | None]]:
    entries = ctx.json_list("files", error="invalid_arguments")
    if not entries:
        raise SlackApiError("invalid_arguments", messages=["[ERROR] missing required field: files"])
    chosen: list[tuple[StoredFile, str | None]] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise SlackApiError("invalid_arguments")
        stored = state.files.get(entry["id"])
        if stored is None or stored.team_id != ctx.auth.team_id or stored.content is None:
            raise SlackApiError("file_not_found")
        title = entry.get("title")
        chosen.append((stored, title if isinstance(title, str) else None))
    return chosen


@handler("files.completeUploadExternal")
def complete_upload(ctx: MethodContext) -> JSONObject:
    state = ctx.emulator.state
    chosen = _files(ctx, state)
    targets = _targets(ctx)
    comment = ctx.text("initial_comment") or ""
    thread = ctx.text("thread_ts")
    for stored, title in chosen:
        stored.completed = True
        if title is not None:
            stored.title = title
    rendered = [stored.to_json() for stored, _ in chosen]
    token = ctx.auth
    for target in targets:
        for stored, _ in chosen:
            if target.id not in stored.channels:
                stored.channels.append(target.id)
        message = Message(
            ts=max(ctx.now_us(), target.last_ts + 1),
            user=token.user_id,
            text=comment,
            team=token.team_id,
            bot_id=token.bot_id,
            app_id=token.app_id if token.bot_id else None,
            files=[dict(r) for r in rendered],
        )
        parent = target.find(parse_ts(thread) or -1) if thread is not None else None
        if parent is not None:
            message.thread_ts = parent.thread_ts or parent.ts
            parent.thread_ts = message.thread_ts
        target.add(message)
        if parent is not None:
            parent.reply_ts.append(message.ts)
    return {"files": rendered}


async def receive_upload(request: Request, state: SlackState) -> Response:
    """Step 2: the bytes POSTed to the upload URL (raw body or any multipart file field)."""
    file_id = request.path_params["file_id"]
    stored = state.files.get(file_id)
    if stored is None or stored.completed:
        return PlainTextResponse("file_not_found", status_code=404)
    content_type = request.headers.get("content-type", "")
    data: bytes
    if content_type.startswith("multipart/form-data"):
        form = await request.form()
        uploads = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
        if not uploads:
            await form.close()
            return PlainTextResponse("no_file_data", status_code=400)
        data = await uploads[0].read()
        await form.close()
    else:
        data = await request.body()
    stored.content = data
    return PlainTextResponse(f"OK - {len(data)}")

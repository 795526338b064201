"""The Slack connector's operations: messages, conversations, users, reactions, files, webhooks.

Each operation validates its input (content limits before sending), builds the method's
arguments and calls :meth:`~connectors.adapters.slack.client.SlackApi._api`. Reads are
idempotent; ``chat.postMessage`` is not, so an ambiguous failure is never retried (a 429 is:
Slack refused the call rather than processing it).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Final

from connectors.adapters.slack.blocks import check_message
from connectors.adapters.slack.channels import normalise
from connectors.adapters.slack.client import SlackApi
from connectors.adapters.slack.files import FileSource, prepare
from connectors.adapters.slack.limits import webhook_digest
from connectors.adapters.slack.models import (
    AuthIdentity,
    InstalledApp,
    JsonObject,
    PostedMessage,
    UploadedFile,
)
from connectors.adapters.slack.oauth import InstallRequest
from connectors.adapters.slack.webhooks import resolve_webhook_url
from connectors.base import operation
from connectors.errors import (
    AuthError,
    ConfigurationError,
    ConnectorError,
    InvalidRequest,
)
from connectors.observability.health import Health, HealthCheck, HealthStatus
from connectors.secrets import Secret

__all__ = ["SlackConnector"]

_JSON_HEADERS: Final = {"Content-Type": "application/json; charset=utf-8"}
_FormValue = str | int | float | bool | None


def _form(**values: _FormValue) -> dict[str, str]:
    """Form fields without the ``None`` ones; booleans as Slack writes them."""
    out: dict[str, str] = {}
    for key, value in values.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def _drop_none(values: Mapping[str, object]) -> JsonObject:
    return {k: v for k, v in values.items() if v is not None}


class SlackConnector(SlackApi):
    """Slack Web API: messages, conversations, users, reactions, files, incoming webhooks."""

    name = "slack"
    version = "1.0.0"
    provider_api_versions = ("web-api",)

    # --- messages -------------------------------------------------------------------------------

    @operation(idempotent=False, scopes=("chat:write",), audit_target="channel")
    async def post_message(
        self,
        channel: str,
        text: str | None = None,
        *,
        blocks: Sequence[Mapping[str, object]] | None = None,
        attachments: Sequence[Mapping[str, object]] | None = None,
        thread_ts: str | None = None,
        reply_broadcast: bool | None = None,
        unfurl_links: bool | None = None,
        unfurl_media: bool | None = None,
        metadata: Mapping[str, object] | None = None,
        username: str | None = None,
        icon_emoji: str | None = None,
    ) -> PostedMessage:
        """``chat.postMessage``: post to a channel (id or name), optionally in a thread.

        The 50-block and 40,000-character limits are checked before sending. Paced at
        ``post_message_rate`` per channel. With ``auto_join`` a ``not_in_channel`` answer joins
        the channel (needs ``channels:join``) and posts again.
        """
        check_message(text=text, blocks=blocks, attachments=attachments)
        payload = _drop_none(
            {
                "channel": normalise(channel),
                "text": text,
                "blocks": list(blocks) if blocks is not None else None,
                "attachments": list(attachments) if attachments is not None else None,
                "thread_ts": thread_ts,
                "reply_broadcast": reply_broadcast,
                "unfurl_links": unfurl_links,
                "unfurl_media": unfurl_media,
                "metadata": dict(metadata) if metadata is not None else None,
                "username": username,
                "icon_emoji": icon_emoji,
            }
        )
        key = self._channels.lookup(channel) or normalise(channel)
        limits = self.settings.limits.for_post(key)
        try:
            body = await self._api("chat.postMessage", payload=payload, limits=limits)
        except ConnectorError as error:
            if not (self.settings.auto_join and self._not_in_channel(error)):
                raise
            payload["channel"] = await self._join_for(channel, error)
            body = await self._api("chat.postMessage", payload=payload, limits=limits)
        posted = PostedMessage.from_body(body)
        if posted.channel:
            self._channels.remember(channel, posted.channel)
        return posted

    @operation(idempotent=True, scopes=("chat:write",), audit_target="channel")
    async def update_message(
        self,
        channel: str,
        ts: str,
        text: str | None = None,
        *,
        blocks: Sequence[Mapping[str, object]] | None = None,
        attachments: Sequence[Mapping[str, object]] | None = None,
        metadata: Mapping[str, object] | None = None,
    ) -> PostedMessage:
        """``chat.update``: replace a message's content (same limits as posting)."""
        check_message(text=text, blocks=blocks, attachments=attachments)
        payload = _drop_none(
            {
                "channel": await self._resolve(channel),
                "ts": ts,
                "text": text,
                "blocks": list(blocks) if blocks is not None else None,
                "attachments": list(attachments) if attachments is not None else None,
                "metadata": dict(metadata) if metadata is not None else None,
            }
        )
        body = await self._api("chat.update", payload=payload)
        return PostedMessage.from_body(body)

    @operation(idempotent=True, scopes=("chat:write",), audit_target="channel")
    async def delete_message(self, channel: str, ts: str, *, missing_ok: bool = False) -> bool:
        """``chat.delete``: ``True`` if deleted, ``False`` if it was already gone (``missing_ok``).

        Retried after an ambiguous failure, so a retry may find the message already deleted:
        pass ``missing_ok=True`` for "make sure it is gone" semantics.
        """
        form = {"channel": await self._resolve(channel), "ts": ts}
        body = await self._api(
            "chat.delete", form=form, classifier=self._deletions if missing_ok else None
        )
        return body.get("ok") is True

    @operation(idempotent=False, scopes=("chat:write",), audit_target="channel")
    async def post_ephemeral(
        self,
        channel: str,
        user: str,
        text: str | None = None,
        *,
        blocks: Sequence[Mapping[str, object]] | None = None,
        attachments: Sequence[Mapping[str, object]] | None = None,
        thread_ts: str | None = None,
    ) -> str:
        """``chat.postEphemeral``: a message only ``user`` sees; returns its ``message_ts``."""
        check_message(text=text, blocks=blocks, attachments=attachments)
        payload = _drop_none(
            {
                "channel": normalise(channel),
                "user": user,
                "text": text,
                "blocks": list(blocks) if blocks is not None else None,
                "attachments": list(attachments) if attachments is not None else None,
                "thread_ts": thread_ts,
            }
        )
        body = await self._api("chat.postEphemeral", payload=payload)
        ts = body.get("message_ts")
        return ts if isinstance(ts, str) else ""

    @operation(idempotent=True, scopes=("reactions:write",), audit_target="channel")
    async def add_reaction(self, channel: str, ts: str, name: str) -> bool:
        """``reactions.add``: ``True`` if added, ``False`` if the app had already reacted."""
        form = {"channel": await self._resolve(channel), "timestamp": ts, "name": name.strip(":")}
        body = await self._api("reactions.add", form=form, classifier=self._reactions)
        return body.get("ok") is True

    # --- conversations --------------------------------------------------------------------------

    @operation(idempotent=True, scopes=("channels:read",))
    async def list_conversations(
        self,
        *,
        types: str | Sequence[str] = "public_channel",
        exclude_archived: bool = False,
        page_size: int | None = None,
    ) -> AsyncIterator[JsonObject]:
        """``conversations.list``: every conversation of ``types``, page by page."""
        joined = types if isinstance(types, str) else ",".join(types)
        form = _form(types=joined, exclude_archived=exclude_archived or None)
        async for channel in self._paginate("conversations.list", "channels", form, page_size):
            yield channel

    @operation(idempotent=True, scopes=("channels:history",), audit_target="channel")
    async def history(
        self,
        channel: str,
        *,
        oldest: str | None = None,
        latest: str | None = None,
        inclusive: bool = False,
        page_size: int | None = None,
    ) -> AsyncIterator[JsonObject]:
        """``conversations.history``: messages newest first within ``oldest``..``latest``."""
        form = _form(
            channel=await self._resolve(channel),
            oldest=oldest,
            latest=latest,
            inclusive=inclusive or None,
        )
        async for message in self._paginate("conversations.history", "messages", form, page_size):
            yield message

    @operation(idempotent=True, scopes=("channels:history",), audit_target="channel")
    async def replies(
        self,
        channel: str,
        ts: str,
        *,
        oldest: str | None = None,
        latest: str | None = None,
        inclusive: bool = False,
        page_size: int | None = None,
    ) -> AsyncIterator[JsonObject]:
        """``conversations.replies``: a thread's parent, then its replies, oldest first."""
        form = _form(
            channel=await self._resolve(channel),
            ts=ts,
            oldest=oldest,
            latest=latest,
            inclusive=inclusive or None,
        )
        async for message in self._paginate("conversations.replies", "messages", form, page_size):
            yield message

    @operation(idempotent=True, scopes=("channels:join",), audit_target="channel")
    async def join(self, channel: str) -> JsonObject:
        """``conversations.join``: join a public channel (a no-op when already a member)."""
        body = await self._api(
            "conversations.join", form={"channel": await self._resolve(channel)}, idempotent=True
        )
        found = body.get("channel")
        return dict(found) if isinstance(found, dict) else {}

    # --- users ----------------------------------------------------------------------------------

    @operation(idempotent=True, scopes=("users:read",))
    async def list_users(self, *, page_size: int | None = None) -> AsyncIterator[JsonObject]:
        """``users.list``: every member of the workspace, page by page."""
        async for user in self._paginate("users.list", "members", {}, page_size):
            yield user

    @operation(idempotent=True, scopes=("users:read",), audit_target="user")
    async def user_info(self, user: str) -> JsonObject:
        """``users.info``: one user by id."""
        body = await self._api("users.info", form={"user": user})
        found = body.get("user")
        return dict(found) if isinstance(found, dict) else {}

    @operation(idempotent=True, scopes=("users:read.email",))
    async def lookup_user_by_email(self, email: str) -> JsonObject:
        """``users.lookupByEmail``: the user with this email (``NotFound`` if none)."""
        body = await self._api("users.lookupByEmail", form={"email": email})
        found = body.get("user")
        return dict(found) if isinstance(found, dict) else {}

    # --- files ----------------------------------------------------------------------------------

    @operation(idempotent=False, scopes=("files:write",), audit_target="filename")
    async def upload_file(
        self,
        source: FileSource,
        *,
        filename: str | None = None,
        channels: str | Sequence[str] | None = None,
        title: str | None = None,
        initial_comment: str | None = None,
        thread_ts: str | None = None,
        alt_text: str | None = None,
        snippet_type: str | None = None,
        length: int | None = None,
    ) -> UploadedFile:
        """Upload with the v2 flow and share into ``channels`` (ids or names).

        Names are resolved to ids first (``files.completeUploadExternal`` accepts only ids).
        Paths and streams are sent in chunks, never read whole into memory; ``length`` is
        required for a stream whose size cannot be found.
        """
        body = prepare(source, length=length)
        name = filename or body.default_name
        if not name:
            raise InvalidRequest("upload_file needs a filename for this source", fields=())
        if body.length == 0:
            raise InvalidRequest(
                "Slack cannot store an empty file", provider_code="missing_argument"
            )
        wanted = [channels] if isinstance(channels, str) else list(channels or ())
        ids = [await self._resolve(c) for c in wanted]
        step1 = await self._api(
            "files.getUploadURLExternal",
            form=_form(
                filename=name, length=body.length, alt_txt=alt_text, snippet_type=snippet_type
            ),
            idempotent=True,
        )
        upload_url, file_id = step1.get("upload_url"), step1.get("file_id")
        if not isinstance(upload_url, str) or not isinstance(file_id, str):
            raise InvalidRequest("files.getUploadURLExternal answered without an upload URL")
        await self.request(
            "POST",
            upload_url,
            idempotent=body.replayable,
            content=body.content,
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": str(body.length),
            },
            classifier=self._uploads,
        )
        shown = title or name
        form = _form(
            files=json.dumps([{"id": file_id, "title": shown}]),
            initial_comment=initial_comment,
            thread_ts=thread_ts,
        )
        if len(ids) == 1:
            form["channel_id"] = ids[0]
        elif ids:
            form["channels"] = ",".join(ids)
        try:
            done = await self._api("files.completeUploadExternal", form=form)
        except ConnectorError as error:
            if not (self.settings.auto_join and self._not_in_channel(error)):
                raise
            for channel_id in ids:
                await self._join_for(channel_id, error)
            done = await self._api("files.completeUploadExternal", form=form)
        files = done.get("files")
        first = files[0] if isinstance(files, list) and files and isinstance(files[0], dict) else {}
        return UploadedFile(id=file_id, title=shown, channels=tuple(ids), file=dict(first))

    # --- incoming webhooks ----------------------------------------------------------------------

    @operation(idempotent=False)
    async def send_incoming_webhook(
        self, url_ref: str | Secret, payload: Mapping[str, object]
    ) -> None:
        """POST ``payload`` to an incoming webhook; ``url_ref`` is a settings key or a Secret.

        Paced at one message per second per webhook; a 429 is retried after ``Retry-After``.
        """
        url = resolve_webhook_url(url_ref, self.runtime.settings)
        text, blocks, attachments = (payload.get(k) for k in ("text", "blocks", "attachments"))
        check_message(
            text=text if isinstance(text, str) else None,
            blocks=blocks if isinstance(blocks, list) else None,
            attachments=attachments if isinstance(attachments, list) else None,
        )
        clear = url.reveal()
        await self.request(
            "POST",
            clear,
            idempotent=False,
            rate_limits=self.settings.limits.for_webhook(webhook_digest(clear)),
            content=json.dumps(dict(payload), separators=(",", ":")).encode(),
            headers=_JSON_HEADERS,
            classifier=self._webhooks,
        )

    # --- identity, health, install --------------------------------------------------------------

    @operation(idempotent=True)
    async def auth_test(self) -> AuthIdentity:
        """``auth.test``: the workspace and user (bot) the token belongs to."""
        return AuthIdentity.from_body(await self._api("auth.test"))

    async def health_check(self) -> Health:
        """Probe ``auth.test``: healthy when the token works, unhealthy on auth errors."""
        try:
            identity = await self.auth_test()
        except AuthError as exc:
            check = HealthCheck(
                "auth.test", HealthStatus.UNHEALTHY, exc.code, self.runtime.clock.time()
            )
        except ConnectorError as exc:
            check = HealthCheck(
                "auth.test", HealthStatus.DEGRADED, exc.code, self.runtime.clock.time()
            )
        else:
            check = HealthCheck(
                "auth.test",
                HealthStatus.HEALTHY,
                f"workspace {identity.team or identity.team_id}",
                self.runtime.clock.time(),
                {"team_id": identity.team_id},
            )
        return Health.from_checks([check])

    def install_request(self, *, state: str | None = None) -> InstallRequest:
        """The Slack authorize URL for installing the app (OAuth v2), with its ``state``."""
        return self._require_oauth().install_request(state=state)

    @operation(idempotent=False)
    async def exchange_code(self, code: str | Secret) -> InstalledApp:
        """Trade the install callback's ``code`` for tokens and store them (CAS) as
        ``oauth_credential`` in the token manager; later calls use and rotate them."""
        oauth = self._require_oauth()
        credential = self.settings.oauth_credential
        if credential is None:
            raise ConfigurationError(
                "exchange_code stores the token under `oauth_credential` in the token manager",
                connector=self.instance_name,
                hint="set oauth_credential (the credential name to install the token as)",
            )
        tokens = self.runtime.token_manager()
        token = await self.attempt(lambda _attempt: oauth.exchange_code(code))
        version = await tokens.install(self.tenant, credential, token)
        team = token.extra.get("team")
        bot_user = token.extra.get("bot_user_id")
        return InstalledApp(
            team_id=str(team.get("id", "")) if isinstance(team, dict) else "",
            team_name=str(team.get("name", "")) if isinstance(team, dict) else "",
            bot_user_id=bot_user if isinstance(bot_user, str) else None,
            scopes=token.scopes,
            rotating=token.refresh_token is not None,
            expires_at=token.expires_at,
            credential_version=version,
        )

    def __repr__(self) -> str:
        return f"SlackConnector(instance={self.instance_name!r}, tenant={self.tenant!r})"

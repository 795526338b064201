"""The emulator's world: workspaces, users, channels, messages, tokens, files, webhooks.

Plain mutable dataclasses, inspectable from tests (``emulator.state.workspaces["T0001"]``). The
``to_json`` methods render the shapes Slack's API returns (keys and JSON types as in the examples
of Slack's OpenAPI spec).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "Channel",
    "IncomingWebhook",
    "JSONObject",
    "Message",
    "MessageFactory",
    "OAuthCode",
    "RefreshGrant",
    "SlackApp",
    "SlackState",
    "StoredFile",
    "Token",
    "User",
    "Workspace",
    "format_ts",
    "parse_ts",
]

JSONObject = dict[str, object]


def format_ts(micros: int) -> str:
    """Render a timestamp in microseconds as Slack's ``"1700000000.000100"``."""
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def parse_ts(value: str) -> int | None:
    """Parse a Slack ``ts`` (or a plain number of seconds) to microseconds; None if invalid."""
    text = value.strip()
    if not text:
        return None
    whole, _, frac = text.partition(".")
    if not whole.isdigit() or (frac and not frac.isdigit()):
        return None
    return int(whole) * 1_000_000 + int((frac + "000000")[:6] or "0")


@dataclass(slots=True)
class User:
    """A workspace member (a person or an app's bot user)."""

    id: str
    team_id: str
    name: str
    real_name: str
    email: str | None
    is_bot: bool = False
    bot_id: str | None = None
    app_id: str | None = None
    is_admin: bool = False
    deleted: bool = False
    updated: int = 1_690_000_000

    def to_json(self) -> JSONObject:
        first, _, last = self.real_name.partition(" ")
        image = f"https://avatars.example.invalid/{self.id}"
        profile: JSONObject = {
            "avatar_hash": f"g{self.id.lower()[-11:]}",
            "status_text": "",
            "status_emoji": "",
            "real_name": self.real_name,
            "display_name": self.name,
            "real_name_normalized": self.real_name,
            "display_name_normalized": self.name,
            "first_name": first,
            "last_name": last,
            "title": "",
            "phone": "",
            "skype": "",
            "team": self.team_id,
            **{f"image_{n}": f"{image}_{n}.png" for n in (24, 32, 48, 72, 192, 512, 1024)},
            "image_original": f"{image}_original.png",
        }
        if self.email is not None:
            profile["email"] = self.email
        if self.is_bot:
            profile["bot_id"] = self.bot_id
            profile["api_app_id"] = self.app_id
        return {
            "id": self.id,
            "team_id": self.team_id,
            "name": self.name,
            "deleted": self.deleted,
            "color": "9f69e7",
            "real_name": self.real_name,
            "tz": "America/Los_Angeles",
            "tz_label": "Pacific Daylight Time",
            "tz_offset": -25200,
            "profile": profile,
            "is_admin": self.is_admin,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": self.updated,
            "has_2fa": False,
        }


@dataclass(slots=True)
class Message:
    """A channel message. ``ts`` is kept as integer microseconds; rendered by ``format_ts``."""

    ts: int
    user: str
    text: str
    team: str
    bot_id: str | None = None
    app_id: str | None = None
    subtype: str | None = None
    username: str | None = None
    thread_ts: int | None = None
    reply_broadcast: bool = False
    blocks: list[object] | None = None
    attachments: list[object] | None = None
    files: list[JSONObject] | None = None
    edited: int | None = None
    reactions: dict[str, list[str]] = field(default_factory=dict)
    reply_ts: list[int] = field(default_factory=list)

    @property
    def is_reply(self) -> bool:
        return self.thread_ts is not None and self.thread_ts != self.ts

    def to_json(self) -> JSONObject:
        body: JSONObject = {"type": "message"}
        if self.subtype:
            body["subtype"] = self.subtype
        body.update({"text": self.text, "user": self.user, "ts": format_ts(self.ts)})
        body["team"] = self.team
        if self.bot_id:
            body["bot_id"] = self.bot_id
            body["app_id"] = self.app_id
        if self.username:
            body["username"] = self.username
        if self.blocks is not None:
            body["blocks"] = self.blocks
        if self.attachments is not None:
            body["attachments"] = self.attachments
        if self.files is not None:
            body["files"] = self.files
            body["upload"] = False
        if self.edited is not None:
            body["edited"] = {"user": self.user, "ts": format_ts(self.edited)}
        if self.thread_ts is not None:
            body["thread_ts"] = format_ts(self.thread_ts)
        if self.is_reply:
            body["parent_user_id"] = self.user
        if self.reply_ts:
            body["reply_count"] = len(self.reply_ts)
            body["reply_users_count"] = 1
            body["latest_reply"] = format_ts(self.reply_ts[-1])
            body["reply_users"] = [self.user]
            body["is_locked"] = False
            body["subscribed"] = False
        if self.reactions:
            body["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in self.reactions.items()
            ]
        return body


MessageFactory = Callable[[int], Message]


@dataclass(slots=True)
class Channel:
    """A conversation. Messages are sorted by ``ts``; seeded ones are built on first read."""

    id: str
    team_id: str
    name: str
    created: int
    creator: str
    is_private: bool = False
    is_archived: bool = False
    is_general: bool = False
    members: set[str] = field(default_factory=set)
    topic: str = ""
    purpose: str = ""
    _messages: list[Message] = field(default_factory=list)
    _pending: int = 0
    _factory: MessageFactory | None = None

    def defer_messages(self, count: int, factory: MessageFactory) -> None:
        """Seed ``count`` messages built by ``factory(index)`` only when someone reads them."""
        self._pending = count
        self._factory = factory

    @property
    def messages(self) -> list[Message]:
        if self._pending and self._factory is not None:
            generated = [self._factory(i) for i in range(self._pending)]
            self._pending = 0
            self._messages[:0] = generated
            self._messages.sort(key=lambda m: m.ts)
        return self._messages

    @property
    def last_ts(self) -> int:
        msgs = self.messages
        return msgs[-1].ts if msgs else 0

    def add(self, message: Message) -> None:
        msgs = self.messages
        if msgs and message.ts <= msgs[-1].ts:
            raise ValueError("message ts must increase within a channel")
        msgs.append(message)

    def find(self, ts: int) -> Message | None:
        msgs = self.messages
        i = bisect.bisect_left(msgs, ts, key=lambda m: m.ts)
        if i < len(msgs) and msgs[i].ts == ts:
            return msgs[i]
        return None

    def remove(self, ts: int) -> None:
        msgs = self.messages
        i = bisect.bisect_left(msgs, ts, key=lambda m: m.ts)
        if i < len(msgs) and msgs[i].ts == ts:
            del msgs[i]

    def to_json(self, viewer: str | None) -> JSONObject:
        """The conversation object as ``conversations.list/info/join`` return it."""
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_private,
            "is_group": self.is_private,
            "is_im": False,
            "is_mpim": False,
            "is_private": self.is_private,
            "created": self.created,
            "is_archived": self.is_archived,
            "is_general": self.is_general,
            "unlinked": 0,
            "name_normalized": self.name,
            "is_shared": False,
            "is_org_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "parent_conversation": None,
            "creator": self.creator,
            "is_ext_shared": False,
            "shared_team_ids": [self.team_id],
            "pending_connected_team_ids": [],
            "is_member": viewer in self.members,
            "topic": {"value": self.topic, "creator": "", "last_set": 0},
            "purpose": {"value": self.purpose, "creator": "", "last_set": 0},
            "previous_names": [],
            "num_members": len(self.members),
        }


@dataclass(slots=True)
class Workspace:
    """A Slack team with its users and channels."""

    id: str
    name: str
    domain: str
    users: dict[str, User] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"https://{self.domain}.slack.com/"

    def channel_by_name(self, name: str) -> Channel | None:
        wanted = name.removeprefix("#")
        return next((c for c in self.channels.values() if c.name == wanted), None)


@dataclass(slots=True)
class Token:
    """An access token. ``expires_at`` (wall-clock seconds) is set for rotating tokens only."""

    value: str
    token_type: str  # "bot" or "user"
    team_id: str
    user_id: str
    app_id: str
    scopes: frozenset[str]
    bot_id: str | None = None
    expires_at: float | None = None
    revoked: bool = False

    def __repr__(self) -> str:  # never print the token value
        return f"Token(type={self.token_type}, team={self.team_id}, user={self.user_id})"


@dataclass(slots=True)
class RefreshGrant:
    """A single-use refresh token of a rotating app."""

    value: str
    app_id: str
    token_type: str
    team_id: str
    user_id: str
    scopes: frozenset[str]
    bot_id: str | None = None
    used: bool = False

    def __repr__(self) -> str:
        return f"RefreshGrant(type={self.token_type}, team={self.team_id}, used={self.used})"


@dataclass(slots=True)
class SlackApp:
    """An installed (or installable) Slack app."""

    app_id: str
    client_id: str
    client_secret: str
    signing_secret: str
    verification_token: str
    bot_user_id: str
    bot_id: str
    token_rotation: bool = False
    token_lifetime: float = 43_200.0
    redirect_uri: str | None = None

    def __repr__(self) -> str:
        return f"SlackApp(app_id={self.app_id}, client_id={self.client_id})"


@dataclass(slots=True)
class OAuthCode:
    """A temporary code from the authorize step, exchanged once at oauth.v2.access."""

    code: str
    client_id: str
    team_id: str
    scopes: frozenset[str]
    user_scopes: frozenset[str]
    user_id: str
    redirect_uri: str | None
    expires_at: float
    used: bool = False


@dataclass(slots=True)
class StoredFile:
    """A file of the upload v2 flow: announced, uploaded, then completed (shared)."""

    id: str
    team_id: str
    user: str
    filename: str
    length: int
    created: int
    alt_txt: str | None = None
    snippet_type: str | None = None
    title: str | None = None
    content: bytes | None = None
    completed: bool = False
    channels: list[str] = field(default_factory=list)

    def to_json(self) -> JSONObject:
        name = self.filename
        ext = name.rsplit(".", 1)[-1].lower() if "." in name else "binary"
        base = f"https://files.slack.com/files-pri/{self.team_id}-{self.id}/{name}"
        return {
            "id": self.id,
            "created": self.created,
            "timestamp": self.created,
            "name": name,
            "title": self.title or name,
            "mimetype": _MIMETYPES.get(ext, "application/octet-stream"),
            "filetype": ext,
            "pretty_type": ext.upper(),
            "user": self.user,
            "user_team": self.team_id,
            "editable": False,
            "size": len(self.content) if self.content is not None else self.length,
            "mode": "hosted",
            "is_external": False,
            "external_type": "",
            "is_public": False,
            "public_url_shared": False,
            "display_as_bot": False,
            "username": "",
            "url_private": base,
            "url_private_download": base.replace("files-pri", "files-pri/download", 1),
            "permalink": f"https://slack.com/files/{self.user}/{self.id}/{name}",
            "permalink_public": f"https://slack-files.com/{self.team_id}-{self.id}",
            "comments_count": 0,
            "is_starred": False,
            # Slack shares asynchronously: the completion answer usually lists no shares yet.
            "shares": {},
            "channels": [],
            "groups": [],
            "ims": [],
            "has_more_shares": False,
            "has_rich_preview": False,
            "file_access": "visible",
            "alt_txt": self.alt_txt or "",
        }


_MIMETYPES = {
    "txt": "text/plain",
    "csv": "text/csv",
    "json": "application/json",
    "pdf": "application/pdf",
    "png": "image/png",
    "jpg": "image/jpeg",
}


@dataclass(slots=True)
class IncomingWebhook:
    """An incoming webhook URL ``/services/<team>/<bot>/<secret>`` bound to a channel."""

    team_id: str
    hook_id: str
    secret: str
    channel_id: str

    @property
    def path(self) -> str:
        return f"/services/{self.team_id}/{self.hook_id}/{self.secret}"

    def __repr__(self) -> str:
        return f"IncomingWebhook(team={self.team_id}, hook={self.hook_id}, to={self.channel_id})"


@dataclass(slots=True)
class SlackState:
    """Everything the emulator knows; tests read and change it directly."""

    workspaces: dict[str, Workspace] = field(default_factory=dict)
    apps: dict[str, SlackApp] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    refresh_grants: dict[str, RefreshGrant] = field(default_factory=dict)
    oauth_codes: dict[str, OAuthCode] = field(default_factory=dict)
    files: dict[str, StoredFile] = field(default_factory=dict)
    webhooks: dict[str, IncomingWebhook] = field(default_factory=dict)
    #: Ephemeral messages by channel: never in history, visible here for assertions.
    ephemeral: list[tuple[str, str, Message]] = field(default_factory=list)
    _counters: dict[str, int] = field(default_factory=dict)

    def next_id(self, prefix: str, width: int = 8) -> str:
        """A new deterministic id: ``F00000001``, ``F00000002``..."""
        n = self._counters.get(prefix, 0) + 1
        self._counters[prefix] = n
        return f"{prefix}{n:0{width}d}"

    def app_by_client_id(self, client_id: str) -> SlackApp | None:
        return next((a for a in self.apps.values() if a.client_id == client_id), None)

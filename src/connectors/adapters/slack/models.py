"""What the Slack operations return: small frozen values over Slack's JSON objects.

Slack's own objects (messages, channels, users, files) are rich and change over time, so they
are handed back as JSON mappings (:data:`JsonObject`); the few fields a caller always needs are
lifted into typed attributes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeAlias

__all__ = ["AuthIdentity", "InstalledApp", "JsonObject", "PostedMessage", "UploadedFile"]

JsonObject: TypeAlias = dict[str, object]
"""A Slack JSON object as parsed (``dict`` of JSON values)."""


def _text(body: Mapping[str, object], key: str) -> str:
    value = body.get(key)
    return value if isinstance(value, str) else ""


@dataclass(frozen=True, slots=True)
class PostedMessage:
    """A message posted or updated: where (channel id), its ``ts``, and Slack's message."""

    channel: str
    ts: str
    message: JsonObject = field(default_factory=dict, repr=False)

    @property
    def thread_ts(self) -> str | None:
        value = self.message.get("thread_ts")
        return value if isinstance(value, str) else None

    @classmethod
    def from_body(cls, body: Mapping[str, object]) -> PostedMessage:
        message = body.get("message")
        return cls(
            channel=_text(body, "channel"),
            ts=_text(body, "ts"),
            message=dict(message) if isinstance(message, Mapping) else {},
        )


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A file uploaded with the v2 flow and the channel ids it was shared into.

    Slack shares asynchronously: ``file`` (Slack's file object) may not list the shares yet.
    """

    id: str
    title: str
    channels: tuple[str, ...]
    file: JsonObject = field(default_factory=dict, repr=False)


@dataclass(frozen=True, slots=True)
class AuthIdentity:
    """``auth.test``: which workspace and which user (or bot) the token belongs to."""

    team_id: str
    team: str
    user_id: str
    user: str
    url: str
    bot_id: str | None = None

    @classmethod
    def from_body(cls, body: Mapping[str, object]) -> AuthIdentity:
        bot = body.get("bot_id")
        return cls(
            team_id=_text(body, "team_id"),
            team=_text(body, "team"),
            user_id=_text(body, "user_id"),
            user=_text(body, "user"),
            url=_text(body, "url"),
            bot_id=bot if isinstance(bot, str) else None,
        )


@dataclass(frozen=True, slots=True)
class InstalledApp:
    """The outcome of an OAuth install: the workspace, the bot user and the granted scopes."""

    team_id: str
    team_name: str
    bot_user_id: str | None
    scopes: frozenset[str]
    rotating: bool
    expires_at: float | None
    credential_version: int

"""Configuration of the Slack emulator: workspace seed, default app and token, limits."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_BOT_SCOPES",
    "ChannelSeed",
    "SlackEmulatorConfig",
]

#: Scopes of the default bot token: what a typical notification/reader bot asks for. Not
#: ``chat:write.public``, so posting to a channel the bot has not joined gives ``not_in_channel``.
DEFAULT_BOT_SCOPES: tuple[str, ...] = (
    "chat:write",
    "channels:read",
    "groups:read",
    "im:read",
    "mpim:read",
    "channels:history",
    "groups:history",
    "channels:join",
    "users:read",
    "users:read.email",
    "reactions:write",
    "files:write",
    "incoming-webhook",
)


@dataclass(frozen=True, slots=True)
class ChannelSeed:
    """One seeded channel. ``bot_member``: whether the app's bot user is in it."""

    name: str
    private: bool = False
    bot_member: bool = True
    archived: bool = False
    #: Members by index into the seeded users (None = every user).
    member_indexes: tuple[int, ...] | None = None
    topic: str = ""
    purpose: str = ""


DEFAULT_CHANNELS: tuple[ChannelSeed, ...] = (
    ChannelSeed("general", topic="Company-wide announcements", purpose="Everyone, everything"),
    ChannelSeed("random", bot_member=False, purpose="Non-work banter"),
    ChannelSeed("sales", bot_member=False, member_indexes=(0, 1, 2, 3, 4, 5)),
    ChannelSeed("alerts", member_indexes=(0, 1, 2)),
    ChannelSeed("engineering", private=True, member_indexes=(6, 7, 8, 9, 10)),
    ChannelSeed("leadership", private=True, bot_member=False, member_indexes=(0, 1)),
    ChannelSeed("old-projects", archived=True, member_indexes=(0, 1, 2)),
)


@dataclass(frozen=True, slots=True)
class SlackEmulatorConfig:
    """Everything the emulator needs to build its initial state; all of it deterministic.

    Rate limits: ``time_scale`` speeds the limiter's clock up (60 makes a minute pass in a
    second), so tier limits and ``Retry-After`` shrink by that factor; ``integer_retry_after``
    rounds the header up to whole seconds like Slack (turn it off with a large ``time_scale``, or
    clients wait a whole second for a window of a few milliseconds).
    """

    team_id: str = "T0001"
    team_name: str = "Acme"
    team_domain: str = "acme"
    user_count: int = 20
    channels: tuple[ChannelSeed, ...] = DEFAULT_CHANNELS
    #: Messages generated (lazily, on first read) in every non-archived channel.
    messages_per_channel: int = 0
    #: The default app (the one whose bot the default token belongs to).
    app_id: str = "A0000001"
    client_id: str = "1000000001.2000000001"
    client_secret: str = "emulator-client-secret"  # noqa: S105 - a fixture, not a credential
    signing_secret: str = "emulator-signing-secret"  # noqa: S105
    verification_token: str = "emulator-verification-token"  # noqa: S105
    redirect_uri: str | None = None
    #: Whether the app has token rotation on: code exchanges then give expiring ``xoxe.`` tokens.
    token_rotation: bool = False
    #: Lifetime of rotating access tokens, seconds (Slack: 12 hours).
    token_lifetime: float = 43_200.0
    bot_token: str = "xoxb-0001-emulator-default-bot-token"  # noqa: S105
    bot_scopes: tuple[str, ...] = DEFAULT_BOT_SCOPES
    #: Enforce tier limits and chat.postMessage's per-channel limit.
    rate_limits: bool = True
    time_scale: float = 1.0
    integer_retry_after: bool = True
    #: chat.postMessage: sustained messages per second per channel, and the burst tolerated.
    post_message_per_second: float = 1.0
    post_message_burst: int = 3
    #: chat.postMessage: optional workspace-wide limit per minute (Slack does not publish one).
    post_message_workspace_per_minute: int | None = None
    #: Requests per minute for special-tier methods other than chat.postMessage (None = no limit).
    special_per_minute: dict[str, int] = field(default_factory=dict)
    #: False = a commercially distributed non-Marketplace app: conversations.history and
    #: conversations.replies drop to 1 request per minute and ``limit`` to at most 15
    #: (Slack's 2025 change).
    marketplace_app: bool = True
    #: The app's Events API Request URL, used by ``deliver_event(None, ...)``.
    events_url: str | None = None
    #: Create an incoming webhook into #alerts at start.
    incoming_webhook_channel: str | None = "alerts"

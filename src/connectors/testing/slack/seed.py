"""Deterministic seed data: a workspace with people, a bot, channels and (lazily) messages.

The same :class:`~connectors.testing.slack.config.SlackEmulatorConfig` always builds the same
world: ``T0001`` "Acme", 20 people ``U00000001``.. with ``first.last@acme.example.com`` emails,
the app's bot user ``UB0000001`` (bot ``B0000001``), channels ``#general``, ``#random``,
``#sales``, ``#alerts``, private ``#engineering`` and ``#leadership``, archived
``#old-projects``, the default bot token, and an incoming webhook into ``#alerts``.
"""

# token_type is Slack's field name ("bot"/"user"), not a secret.
# ruff: noqa: S106

from __future__ import annotations

import hashlib

from connectors.testing.slack.config import SlackEmulatorConfig
from connectors.testing.slack.state import (
    Channel,
    IncomingWebhook,
    Message,
    MessageFactory,
    SlackApp,
    SlackState,
    Token,
    User,
    Workspace,
)

__all__ = ["SEED_EPOCH", "build_state"]

#: Wall-clock second of the first seeded message and of channel creation.
SEED_EPOCH = 1_690_000_000

_FIRST = (
    "Ada", "Grace", "Alan", "Barbara", "Edsger", "Frances", "Donald", "Margaret", "Ken",
    "Radia", "Dennis", "Karen", "John", "Hedy", "Linus", "Annie", "Tim", "Sophie", "Guido",
    "Katherine",
)  # fmt: skip
_LAST = (
    "Lovelace", "Hopper", "Turing", "Liskov", "Dijkstra", "Allen", "Knuth", "Hamilton",
    "Thompson", "Perlman", "Ritchie", "Jones", "McCarthy", "Lamarr", "Torvalds", "Easley",
    "Berners", "Wilson", "Rossum", "Johnson",
)  # fmt: skip


def _person(index: int, team_id: str, domain: str) -> User:
    first = _FIRST[index % len(_FIRST)]
    last = _LAST[(index + index // len(_LAST)) % len(_LAST)]
    suffix = "" if index < len(_FIRST) else str(index // len(_FIRST))
    handle = f"{first}.{last}{suffix}".lower()
    return User(
        id=f"U{index + 1:08d}",
        team_id=team_id,
        name=handle,
        real_name=f"{first} {last}",
        email=f"{handle}@{domain}.example.com",
        is_admin=index == 0,
    )


def _message_factory(channel: Channel, authors: list[str]) -> MessageFactory:
    def build(index: int) -> Message:
        author = authors[index % len(authors)] if authors else channel.creator
        return Message(
            ts=(SEED_EPOCH + 60 * index) * 1_000_000 + (index % 1000) * 100,
            user=author,
            text=f"Seeded message {index + 1} in #{channel.name}",
            team=channel.team_id,
        )

    return build


def _hook_secret(team_id: str, channel_id: str) -> str:
    return hashlib.sha256(f"{team_id}/{channel_id}".encode()).hexdigest()[:24]


def build_state(config: SlackEmulatorConfig) -> SlackState:
    """Build the initial world described by ``config``."""
    state = SlackState()
    ws = Workspace(id=config.team_id, name=config.team_name, domain=config.team_domain)
    state.workspaces[ws.id] = ws
    people = [_person(i, ws.id, ws.domain) for i in range(config.user_count)]
    for person in people:
        ws.users[person.id] = person
    bot_user = User(
        id="UB0000001",
        team_id=ws.id,
        name="emulator-bot",
        real_name="Emulator Bot",
        email=None,
        is_bot=True,
        bot_id="B0000001",
        app_id=config.app_id,
    )
    ws.users[bot_user.id] = bot_user
    app = SlackApp(
        app_id=config.app_id,
        client_id=config.client_id,
        client_secret=config.client_secret,
        signing_secret=config.signing_secret,
        verification_token=config.verification_token,
        bot_user_id=bot_user.id,
        bot_id="B0000001",
        token_rotation=config.token_rotation,
        token_lifetime=config.token_lifetime,
        redirect_uri=config.redirect_uri,
    )
    state.apps[app.app_id] = app
    creator = people[0].id if people else bot_user.id
    for index, seed in enumerate(config.channels):
        channel = Channel(
            id=f"C{index + 1:08d}",
            team_id=ws.id,
            name=seed.name,
            created=SEED_EPOCH - 86_400 * (len(config.channels) - index),
            creator=creator,
            is_private=seed.private,
            is_archived=seed.archived,
            is_general=seed.name == "general",
            topic=seed.topic,
            purpose=seed.purpose,
        )
        if seed.member_indexes is None:
            channel.members.update(p.id for p in people)
        else:
            channel.members.update(people[i].id for i in seed.member_indexes if i < len(people))
        if seed.bot_member:
            channel.members.add(bot_user.id)
        if config.messages_per_channel and not seed.archived:
            authors = sorted(m for m in channel.members if m != bot_user.id)
            factory = _message_factory(channel, authors)
            channel.defer_messages(config.messages_per_channel, factory)
        ws.channels[channel.id] = channel
    state.tokens[config.bot_token] = Token(
        value=config.bot_token,
        token_type="bot",
        team_id=ws.id,
        user_id=bot_user.id,
        app_id=app.app_id,
        scopes=frozenset(config.bot_scopes),
        bot_id=app.bot_id,
    )
    if config.incoming_webhook_channel:
        target = ws.channel_by_name(config.incoming_webhook_channel)
        if target is not None:
            hook = IncomingWebhook(
                team_id=ws.id,
                hook_id="B0000H001",
                secret=_hook_secret(ws.id, target.id),
                channel_id=target.id,
            )
            state.webhooks[hook.path] = hook
    return state

"""Channel names to ids: a per-tenant directory filled from ``conversations.list``.

Some Slack methods take a channel *name* (``chat.postMessage``) and some only an *id*
(``files.completeUploadExternal``, ``conversations.join``): slack_sdk's ``files_upload_v2`` fails
with ``channel_not_found`` when given a name (python-slack-sdk #1359, #1465). The connector
resolves names here first. The directory is pure bookkeeping (no I/O): the connector feeds it the
pages it fetched, and it answers from memory until ``ttl`` seconds have passed on its clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

from connectors.clock import Clock

__all__ = ["ChannelDirectory", "looks_like_id", "normalise"]

_ID: Final = re.compile(r"^[CGD][A-Z0-9]{6,}$")


def looks_like_id(value: str) -> bool:
    """Whether ``value`` is a conversation id (``C…``, ``G…``, ``D…``) rather than a name."""
    return bool(_ID.match(value))


def normalise(value: str) -> str:
    """A channel reference without a leading ``#`` and surrounding space."""
    return value.strip().removeprefix("#")


class ChannelDirectory:
    """Channel name → id for one tenant's workspace; each entry trusted for ``ttl`` seconds."""

    def __init__(self, clock: Clock, ttl: float = 300.0) -> None:
        self._clock = clock
        self._ttl = ttl
        self._ids: dict[str, tuple[str, float]] = {}

    def lookup(self, name: str) -> str | None:
        """The id of ``name`` if known and fresh (ids pass through unchanged)."""
        value = normalise(name)
        if looks_like_id(value):
            return value
        entry = self._ids.get(value)
        if entry is None or self._clock.monotonic() - entry[1] >= self._ttl:
            return None
        return entry[0]

    def load(self, channels: Iterable[Mapping[str, object]]) -> None:
        """Replace the directory with a full ``conversations.list`` listing."""
        now = self._clock.monotonic()
        ids: dict[str, tuple[str, float]] = {}
        for channel in channels:
            name, cid = channel.get("name"), channel.get("id")
            if isinstance(name, str) and isinstance(cid, str):
                ids[name] = (cid, now)
        self._ids = ids

    def remember(self, name: str, channel_id: str) -> None:
        """Record one mapping learnt elsewhere (a ``chat.postMessage`` answer)."""
        value = normalise(name)
        if not looks_like_id(value):
            self._ids[value] = (channel_id, self._clock.monotonic())

    def invalidate(self) -> None:
        """Forget everything (a cached id turned out wrong)."""
        self._ids.clear()

    def __len__(self) -> int:
        return len(self._ids)

"""Slack's per-method rate-limit tiers, as a table the limiter reads before every call.

Slack limits each Web API method per workspace per app by *tier* (docs.slack.dev, "Rate
limits"): Tier 1 allows 1+ request per minute, Tier 2 20+, Tier 3 50+, Tier 4 100+, with
bursts tolerated. ``SPECIAL`` methods have their own rules: ``chat.postMessage`` allows about one
message per second per channel; ``auth.test`` and ``oauth.v2.access`` publish no number.

:data:`METHOD_TIERS` is derived from Slack's per-method docs (the machine-readable copy in
``shared/reference/slack/methods/*.json``); a test checks it against those files whenever they are
present, so the two cannot drift apart unnoticed. A method missing from the table is taken as
Tier 2, the tier of most Slack methods.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

__all__ = ["DEFAULT_TIER", "METHOD_TIERS", "TIER_PER_MINUTE", "Tier", "tier_of"]


class Tier(enum.IntEnum):
    """A Slack rate-limit tier (``SPECIAL`` = the method has its own, documented elsewhere)."""

    SPECIAL = 0
    TIER_1 = 1
    TIER_2 = 2
    TIER_3 = 3
    TIER_4 = 4

    @property
    def per_minute(self) -> int | None:
        """The documented floor of requests per minute, or ``None`` for special limits."""
        return TIER_PER_MINUTE.get(self)


#: Requests per minute Slack promises per tier ("20+ per minute" → 20: the floor is safe).
TIER_PER_MINUTE: Final[Mapping[Tier, int]] = MappingProxyType(
    {Tier.TIER_1: 1, Tier.TIER_2: 20, Tier.TIER_3: 50, Tier.TIER_4: 100}
)

#: The tier assumed for a method the table does not list (most Slack methods are Tier 2).
DEFAULT_TIER: Final = Tier.TIER_2

#: Tier of every method the connector calls (and the others the reference documents).
METHOD_TIERS: Final[Mapping[str, Tier]] = MappingProxyType(
    {
        "auth.revoke": Tier.TIER_3,
        "auth.test": Tier.SPECIAL,
        "chat.delete": Tier.TIER_3,
        "chat.postEphemeral": Tier.TIER_4,
        "chat.postMessage": Tier.SPECIAL,
        "chat.update": Tier.TIER_3,
        "conversations.history": Tier.TIER_3,
        "conversations.info": Tier.TIER_3,
        "conversations.join": Tier.TIER_3,
        "conversations.list": Tier.TIER_2,
        "conversations.replies": Tier.TIER_3,
        "files.completeUploadExternal": Tier.TIER_4,
        "files.getUploadURLExternal": Tier.TIER_4,
        "oauth.v2.access": Tier.SPECIAL,
        "reactions.add": Tier.TIER_3,
        "users.info": Tier.TIER_4,
        "users.list": Tier.TIER_2,
        "users.lookupByEmail": Tier.TIER_3,
    }
)


def tier_of(method: str) -> Tier:
    """The tier of Web API ``method`` (``DEFAULT_TIER`` when the table does not list it)."""
    return METHOD_TIERS.get(method, DEFAULT_TIER)

"""Client-side rate limits for Slack: which limiter keys a call takes, at what rate.

The resilience pipeline paces every attempt *before* it is sent (one reservation per key), so a
well-configured connector never earns a 429. The keys are scoped by the pipeline to the tenant
(one tenant = one workspace) and the connector; within that:

- ``tier<N>:<method>``: Slack's per-method tier limit (Slack counts per method per workspace per
  app). Rate = the tier's floor per minute; burst = one less than that floor, so a request
  delayed on the way (jitter up to one interval) still finds the server's bucket non-empty.
- ``chat.postMessage:<channel>``: about one message per second per channel, burst 1 by default
  (Slack tolerates "short bursts" without saying how short).
- ``webhook:<digest>``: an incoming webhook, one message per second; the key holds a digest of the
  URL, never the URL (it is a credential).

``scale`` multiplies every rate: against an emulator whose clock runs ``time_scale`` times faster
set it to the same factor. Special-tier methods other than ``chat.postMessage`` get no limit unless
``special_per_minute`` names one. Non-Marketplace apps (``marketplace_app=False``) get Slack's 2025
limit of one ``conversations.history``/``conversations.replies`` call per minute.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from connectors.adapters.slack.tiers import Tier, tier_of
from connectors.errors import InvalidSetting
from connectors.resilience import RateLimit

__all__ = ["NON_MARKETPLACE_METHODS", "SlackRateLimits", "webhook_digest"]

#: Methods Slack limits to 1 per minute for commercially distributed non-Marketplace apps.
NON_MARKETPLACE_METHODS: Final = frozenset({"conversations.history", "conversations.replies"})
_CACHE_LIMIT: Final = 4096
_EMPTY: Final[tuple[RateLimit, ...]] = ()


def webhook_digest(url: str) -> str:
    """A short, stable, non-reversible name for a webhook URL (for limiter keys and logs)."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def _positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise InvalidSetting(name, value, "a number > 0")


@dataclass(frozen=True, slots=True, eq=False)
class SlackRateLimits:
    """Builds (and caches) the :class:`RateLimit` tuples each Slack call passes to the pipeline."""

    enabled: bool = True
    scale: float = 1.0
    post_message_rate: float = 1.0
    post_message_burst: float = 1.0
    webhook_rate: float = 1.0
    marketplace_app: bool = True
    special_per_minute: Mapping[str, int] = field(default_factory=dict)
    _methods: dict[str, tuple[RateLimit, ...]] = field(default_factory=dict, repr=False)
    _channels: dict[str, tuple[RateLimit, ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        _positive("rate_scale", self.scale)
        _positive("post_message_rate", self.post_message_rate)
        _positive("post_message_burst", self.post_message_burst)
        _positive("webhook_rate", self.webhook_rate)
        if self.post_message_burst < 1:
            raise InvalidSetting("post_message_burst", self.post_message_burst, "a number ≥ 1")
        for method, per_minute in self.special_per_minute.items():
            _positive(f"special_per_minute.{method}", per_minute)
        object.__setattr__(
            self, "special_per_minute", MappingProxyType(dict(self.special_per_minute))
        )

    def per_minute(self, method: str) -> int | None:
        """Requests per minute the client allows for ``method`` (``None``: not limited here)."""
        if not self.marketplace_app and method in NON_MARKETPLACE_METHODS:
            return 1
        tier = tier_of(method)
        if tier is Tier.SPECIAL:
            return self.special_per_minute.get(method)
        return tier.per_minute

    def for_method(self, method: str) -> tuple[RateLimit, ...]:
        """The limits of one call to ``method`` (not ``chat.postMessage``: see :meth:`for_post`)."""
        found = self._methods.get(method)
        if found is not None:
            return found
        limits = _EMPTY
        per_minute = self.per_minute(method) if self.enabled else None
        if per_minute is not None:
            tier = tier_of(method)
            limits = (
                RateLimit(
                    key=f"tier{tier.value}:{method}",
                    rate=per_minute / 60.0 * self.scale,
                    burst=float(max(1, per_minute - 1)),
                ),
            )
        if len(self._methods) >= _CACHE_LIMIT:
            self._methods.clear()
        self._methods[method] = limits
        return limits

    def for_post(self, channel: str) -> tuple[RateLimit, ...]:
        """``chat.postMessage`` to ``channel`` (an id, or a name when no id is known)."""
        found = self._channels.get(channel)
        if found is not None:
            return found
        limits = _EMPTY
        if self.enabled:
            limits = (
                RateLimit(
                    key=f"chat.postMessage:{channel}",
                    rate=self.post_message_rate * self.scale,
                    burst=self.post_message_burst,
                ),
                *self.for_method("chat.postMessage"),
            )
        if len(self._channels) >= _CACHE_LIMIT:
            self._channels.clear()
        self._channels[channel] = limits
        return limits

    def for_webhook(self, digest: str) -> tuple[RateLimit, ...]:
        """One incoming webhook (named by :func:`webhook_digest`)."""
        if not self.enabled:
            return _EMPTY
        return (RateLimit(key=f"webhook:{digest}", rate=self.webhook_rate * self.scale),)

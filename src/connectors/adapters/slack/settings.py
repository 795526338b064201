"""The Slack connector's settings, read once at connect time into a typed value.

=========================  ==========================================================  =========
setting                    meaning                                                     default
=========================  ==========================================================  =========
``base_url``               Web API base URL                                            ``https://slack.com/api/``
``token``                  a static bot token (``xoxb-``), a ``Secret``                —
``oauth_credential``       credential name of a rotating token in the token manager    —
``client_id``              OAuth client id (install and rotation)                      —
``client_secret``          OAuth client secret, a ``Secret``                           —
``redirect_uri``           OAuth redirect URI                                          —
``install_scopes``         bot scopes requested at install (list or comma string)      the adapter's
``auto_join``              on ``not_in_channel`` join the channel and retry            ``false``
``page_size``              items per page for cursor-paged reads (1..1000)             200
``rate_limits``            pace calls client-side before Slack would answer 429        ``true``
``rate_scale``             multiply every rate (an emulator's ``time_scale``)          1.0
``post_message_rate``      chat.postMessage per second per channel                     1.0
``post_message_burst``     chat.postMessage burst per channel                          1
``marketplace_app``        false = Slack's 2025 limits for history/replies             ``true``
``channel_cache_ttl``      seconds a channel name → id lookup is trusted               300
=========================  ==========================================================  =========

Exactly one of ``token`` and ``oauth_credential`` must be set (installing with ``exchange_code``
needs ``oauth_credential`` and the client settings, and no token yet).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from connectors.adapters.slack.limits import SlackRateLimits
from connectors.errors import ConfigurationError, InvalidSetting
from connectors.secrets import Secret

__all__ = ["DEFAULT_BASE_URL", "SlackSettings"]

DEFAULT_BASE_URL = "https://slack.com/api/"


def _secret(name: str, value: object) -> Secret | None:
    if value is None or value == "":
        return None
    if isinstance(value, Secret):
        return value
    if isinstance(value, str):
        return Secret(value, name=f"slack/{name}")
    raise InvalidSetting(name, "<hidden>", "a secret string")


def _text(name: str, value: object) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidSetting(name, value, "a string")
    return value


def _flag(name: str, value: object, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    raise InvalidSetting(name, value, "true or false")


def _number(name: str, value: object, default: float, *, low: float = 0.0) -> float:
    if value is None:
        return default
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InvalidSetting(name, value, f"a number > {low:g}") from None
    if isinstance(value, bool) or not number > low or number != number:
        raise InvalidSetting(name, value, f"a number > {low:g}")
    return number


def _scopes(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(s.strip() for s in value.split(",") if s.strip())
    if isinstance(value, Sequence):
        return tuple(str(s).strip() for s in value if str(s).strip())
    raise InvalidSetting("install_scopes", value, "a list of scopes or a comma-separated string")


@dataclass(frozen=True, slots=True)
class SlackSettings:
    """Validated settings of one Slack connector instance."""

    base_url: str = DEFAULT_BASE_URL
    token: Secret | None = None
    oauth_credential: str | None = None
    client_id: str | None = None
    client_secret: Secret | None = None
    redirect_uri: str | None = None
    install_scopes: tuple[str, ...] = ()
    auto_join: bool = False
    page_size: int = 200
    channel_cache_ttl: float = 300.0
    limits: SlackRateLimits = field(default_factory=SlackRateLimits)

    @classmethod
    def from_mapping(cls, settings: Mapping[str, object]) -> SlackSettings:
        """Validate ``settings``; raises :class:`InvalidSetting`/:class:`ConfigurationError`."""
        base_url = _text("base_url", settings.get("base_url")) or DEFAULT_BASE_URL
        if not base_url.startswith(("https://", "http://")):
            raise InvalidSetting("base_url", base_url, "an http(s) URL")
        if not base_url.endswith("/"):
            base_url += "/"
        token = _secret("token", settings.get("token"))
        credential = _text("oauth_credential", settings.get("oauth_credential"))
        if token is not None and credential is not None:
            raise ConfigurationError(
                "set either `token` or `oauth_credential` for Slack, not both",
                connector="slack",
            )
        if token is None and credential is None:
            raise ConfigurationError(
                "the Slack connector needs a bot token",
                connector="slack",
                hint="set `token: ${secret:SLACK_BOT_TOKEN}`, or `oauth_credential` for rotation",
            )
        client_id = _text("client_id", settings.get("client_id"))
        client_secret = _secret("client_secret", settings.get("client_secret"))
        page_size = int(_number("page_size", settings.get("page_size"), 200))
        if not 1 <= page_size <= 1000:
            raise InvalidSetting("page_size", page_size, "an integer from 1 to 1000")
        special = settings.get("special_per_minute") or {}
        if not isinstance(special, Mapping):
            raise InvalidSetting("special_per_minute", special, "a mapping of method → per minute")
        limits = SlackRateLimits(
            enabled=_flag("rate_limits", settings.get("rate_limits"), True),
            scale=_number("rate_scale", settings.get("rate_scale"), 1.0),
            post_message_rate=_number("post_message_rate", settings.get("post_message_rate"), 1.0),
            post_message_burst=_number(
                "post_message_burst", settings.get("post_message_burst"), 1.0
            ),
            webhook_rate=_number("webhook_rate", settings.get("webhook_rate"), 1.0),
            marketplace_app=_flag("marketplace_app", settings.get("marketplace_app"), True),
            special_per_minute={str(k): int(v) for k, v in special.items()},
        )
        return cls(
            base_url=base_url,
            token=token,
            oauth_credential=credential,
            client_id=client_id,
            client_secret=client_secret,
            redirect_uri=_text("redirect_uri", settings.get("redirect_uri")),
            install_scopes=_scopes(settings.get("install_scopes")),
            auto_join=_flag("auto_join", settings.get("auto_join"), False),
            page_size=page_size,
            channel_cache_ttl=_number(
                "channel_cache_ttl", settings.get("channel_cache_ttl"), 300.0, low=-1.0
            ),
            limits=limits,
        )

    @property
    def token_url(self) -> str:
        """``oauth.v2.access`` under the base URL."""
        return f"{self.base_url}oauth.v2.access"

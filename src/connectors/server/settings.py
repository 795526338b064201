"""What the server is told at start: its signing secret, which connectors each tenant sees,
probe cadence, cookie and login policy, and how ``/metrics`` is protected.

:class:`ServerSettings` is a frozen dataclass built by the CLI (``connectors serve``) or by
tests. Nothing here reads the environment: the caller decides where the secret comes from.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from connectors.errors import InvalidSetting
from connectors.secrets.secret import Secret

__all__ = ["MetricsAuth", "ServerSettings"]

#: ``token``: ``/metrics`` needs an API token and shows only the token's tenant.
#: ``none``: ``/metrics`` is not served by the main app; serve :func:`metrics_app` on a separate,
#: private host/port for the Prometheus scraper instead.
MetricsAuth = Literal["token", "none"]


def _random_secret() -> Secret:
    return Secret(secrets.token_urlsafe(32), name="server/secret")


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Server configuration. Durations in seconds.

    ``secret`` keys every server-side HMAC (session cookies, CSRF tokens, OAuth ``state``);
    by default a random one per process, so sessions and pending OAuth connects do not survive a
    restart and several processes behind one load balancer need the same explicit secret.
    ``connectors`` lists the connector names shown and probed (``None``: every definition of the
    Hub, else every registered adapter); ``tenant_connectors`` narrows that per tenant.
    ``probe_tenants`` are probed even before any traffic was seen for them.
    """

    secret: Secret = field(default_factory=_random_secret)
    connectors: Sequence[str] | None = None
    tenant_connectors: Mapping[str, Sequence[str]] = field(default_factory=dict)
    probe_tenants: Sequence[str] = ()
    probe_interval: float | None = 30.0
    probe_timeout: float = 10.0
    session_lifetime: float = 8 * 3600.0
    secure_cookies: bool = False
    login_attempts: int = 10
    login_window: float = 300.0
    metrics_auth: MetricsAuth = "token"
    #: OAuth tokens expiring within this many seconds show as ``expiring``.
    expiring_within: float = 1800.0
    #: Seconds a signed OAuth ``state`` stays valid.
    oauth_state_lifetime: float = 600.0
    #: Base URL the provider redirects back to (``{public_url}/oauth/callback``).
    public_url: str = "http://127.0.0.1:8000"
    #: The dashboard's auto-refresh period (JS fetch; meta refresh without JS).
    refresh_seconds: int = 5

    def __post_init__(self) -> None:
        if len(self.secret.reveal()) < 16:
            raise InvalidSetting("server secret", "<hidden>", "at least 16 characters")
        if self.probe_interval is not None and self.probe_interval <= 0:
            raise InvalidSetting("probe_interval", self.probe_interval, "a positive number")
        if self.session_lifetime <= 0:
            raise InvalidSetting("session_lifetime", self.session_lifetime, "a positive number")
        if self.login_attempts < 1:
            raise InvalidSetting("login_attempts", self.login_attempts, "at least 1")
        if self.metrics_auth not in ("token", "none"):
            raise InvalidSetting("metrics_auth", self.metrics_auth, "'token' or 'none'")
        if not self.public_url.startswith(("http://", "https://")):
            raise InvalidSetting("public_url", self.public_url, "an http(s) URL")

    @property
    def key(self) -> bytes:
        """The HMAC key bytes (derived uses are domain-separated by their callers)."""
        return self.secret.reveal().encode()

    @property
    def redirect_uri(self) -> str:
        """Where providers send the user back after an OAuth connect."""
        return self.public_url.rstrip("/") + "/oauth/callback"

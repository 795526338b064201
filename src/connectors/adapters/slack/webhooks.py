"""Incoming webhooks: the URL is a credential, and the answers are plain text.

``POST https://hooks.slack.com/services/T…/B…/…`` with a JSON payload answers HTTP 200 ``ok``, or
a plain-text error code with a status (Slack changelog 2016-05-17 and the SDK mocks)::

    400 invalid_payload, no_text, invalid_blocks, user_not_found ...   InvalidRequest / NotFound
    403 invalid_token, action_prohibited                               AuthenticationFailed /
                                                                       AuthorizationError
    404 no_service, no_team, channel_not_found                         NotFound
    410 channel_is_archived                                            Conflict
    429 (Retry-After)                                                  RateLimited, not sent
    5xx rollup_error ...                                               ServiceUnavailable

The URL is resolved from a settings key or given as a :class:`~connectors.secrets.Secret`; it
never appears in an error, a log line, an audit target or a limiter key (see
:func:`~connectors.adapters.slack.limits.webhook_digest`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import httpx2

from connectors.adapters.slack.classify import error_for
from connectors.clock import Clock, system_clock
from connectors.errors import (
    AuthenticationFailed,
    AuthorizationError,
    ConfigurationError,
    ConnectorError,
    InvalidRequest,
    InvalidSetting,
    NotFound,
    PermanentError,
)
from connectors.http import ResponseClassifier
from connectors.observability.redaction import redact_text
from connectors.secrets import Secret

__all__ = ["WebhookClassifier", "resolve_webhook_url"]

_BY_STATUS: Final[Mapping[int, type[PermanentError] | type[AuthenticationFailed]]] = {
    400: InvalidRequest,
    404: NotFound,
}
_CODE_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def resolve_webhook_url(url_ref: str | Secret, settings: Mapping[str, object]) -> Secret:
    """The webhook URL for ``url_ref``: a :class:`Secret` as is, or a settings key holding one.

    A plain string is *only* a settings key (never a URL), so a URL cannot slip into code, logs
    or audit records by accident.
    """
    if isinstance(url_ref, Secret):
        url = url_ref
    else:
        if "://" in url_ref:
            raise ConfigurationError(
                "send_incoming_webhook got a URL as a plain string",
                hint="store the URL as a secret and pass its settings key, or pass a Secret",
            )
        value = settings.get(url_ref)
        if value is None:
            raise ConfigurationError(
                f"no setting {url_ref!r} holds an incoming webhook URL",
                hint=f"set {url_ref}: ${{secret:...}} in the connector's settings",
            )
        url = value if isinstance(value, Secret) else Secret(str(value), name=url_ref)
    if not url.reveal().startswith(("https://", "http://")):
        raise InvalidSetting(url_ref if isinstance(url_ref, str) else "url", url, "an http(s) URL")
    return url


class WebhookClassifier(ResponseClassifier):
    """Maps a webhook's plain-text answer to success or a typed error."""

    __slots__ = ()

    def __init__(self, *, clock: Clock = system_clock) -> None:
        super().__init__(clock=clock, redact=redact_text)

    def classify(self, response: httpx2.Response) -> ConnectorError | None:
        status = response.status_code
        if 200 <= status < 300:
            return None
        code = _code(response)
        body: dict[str, object] = {}
        retry_after = self.retry_after(response)
        if status == 429:
            return error_for(
                "rate_limited", body, method="incoming webhook", status=429, retry_after=retry_after
            )
        if status >= 500:
            return error_for(
                code or "service_unavailable",
                body,
                method="incoming webhook",
                status=status,
                retry_after=retry_after,
            )
        lead = f"Slack incoming webhook failed: {code or f'HTTP {status}'}"
        if status == 403:
            if code == "invalid_token":
                return AuthenticationFailed(
                    lead,
                    status=status,
                    provider_code=code,
                    hint="the webhook URL is wrong or was revoked; create a new one",
                )
            return AuthorizationError(lead, status=status, provider_code=code)
        if status == 410:
            return error_for(
                code or "channel_is_archived", body, method="incoming webhook", status=status
            )
        if code is not None and code.endswith("_not_found"):
            return NotFound(lead, status=status, provider_code=code)
        cls = _BY_STATUS.get(status, PermanentError)
        return cls(lead, status=status, provider_code=code)


def _code(response: httpx2.Response) -> str | None:
    """Slack's plain-text error code, when the body is one (never a free-form excerpt)."""
    text = redact_text(response.text.strip())[:64]
    if text and all(c in _CODE_CHARS for c in text):
        return text
    return None

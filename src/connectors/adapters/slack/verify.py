"""Inbound request verification: Slack's ``v0`` signatures over the raw body.

Slack signs every Events API, interactivity and slash-command request with the app's signing
secret (docs.slack.dev, "Verifying requests from Slack")::

    X-Slack-Request-Timestamp: <unix seconds>
    X-Slack-Signature: v0=<hex HMAC-SHA256(signing_secret, "v0:<timestamp>:<raw body>")>

:func:`verify_slack_request` checks both headers over the *raw, undecoded* body, refuses a
timestamp more than ``tolerance`` seconds (default 300) in the past or the future on an injected
clock, compares in constant time, and optionally consults a replay guard so the same signed
request is accepted once. Every refusal is :class:`~connectors.errors.AuthenticationFailed` with a
``provider_code`` saying why (``missing_signature``, ``malformed_timestamp``, ``stale_timestamp``,
``invalid_signature``, ``replayed_request``...) and never carries the secret or a signature.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Mapping
from typing import Final, Protocol

from connectors.clock import Clock
from connectors.errors import AuthenticationFailed, InvalidSetting
from connectors.secrets import Secret

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "ReplayCache",
    "ReplayGuard",
    "sign_slack_request",
    "verify_slack_request",
]

TIMESTAMP_HEADER: Final = "x-slack-request-timestamp"
SIGNATURE_HEADER: Final = "x-slack-signature"
_VERSION: Final = "v0"
_HEX: Final = frozenset("0123456789abcdef")


class ReplayGuard(Protocol):
    """Remembers verified requests: ``True`` the first time a key is seen, ``False`` after.

    ``expires_at`` (epoch seconds) is when the key may be forgotten: past it, the timestamp
    check refuses the request anyway. A Redis ``SET key 1 NX EXAT expires_at`` is one.
    """

    def __call__(self, key: str, expires_at: float) -> bool: ...


class ReplayCache:
    """An in-process :class:`ReplayGuard` (one worker; use a shared store for several)."""

    def __init__(self, clock: Clock, *, max_entries: int = 100_000) -> None:
        self._clock = clock
        self._max = max_entries
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, key: str, expires_at: float) -> bool:
        now = self._clock.time()
        with self._lock:
            if len(self._seen) >= self._max:
                self._seen = {k: t for k, t in self._seen.items() if t > now}
                if len(self._seen) >= self._max:  # flooded with live keys: refuse, never forget
                    return False
            found = self._seen.get(key)
            if found is not None and found > now:
                return False
            self._seen[key] = expires_at
            return True

    def __len__(self) -> int:
        return len(self._seen)


def sign_slack_request(signing_secret: Secret, timestamp: int | str, raw_body: bytes) -> str:
    """The ``X-Slack-Signature`` value for ``raw_body`` sent at ``timestamp`` (``v0=<hex>``)."""
    base = f"{_VERSION}:{timestamp}:".encode() + raw_body
    digest = hmac.new(signing_secret.reveal().encode(), base, hashlib.sha256).hexdigest()
    return f"{_VERSION}={digest}"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        for key, candidate in headers.items():
            if key.lower() == name:
                return candidate
    return value


def _refuse(message: str, code: str) -> AuthenticationFailed:
    return AuthenticationFailed(
        f"Slack request refused: {message}",
        connector="slack",
        provider_code=code,
        hint="only requests signed by Slack with this app's signing secret are accepted",
    )


def verify_slack_request(
    headers: Mapping[str, str],
    raw_body: bytes,
    signing_secret: Secret,
    *,
    clock: Clock,
    tolerance: float = 300.0,
    replay_guard: ReplayGuard | None = None,
) -> int:
    """Verify a request from Slack; return its timestamp (Unix seconds) or raise.

    ``headers`` is any mapping (matched case-insensitively); ``raw_body`` the exact bytes
    received, before any parsing. Raises :class:`AuthenticationFailed` when a header is missing
    or malformed, the timestamp is outside ``tolerance`` seconds of ``clock.time()``, the
    signature does not match, or ``replay_guard`` has seen the request before.
    """
    if not isinstance(signing_secret, Secret) or not signing_secret:
        raise InvalidSetting("signing_secret", "<hidden>", "a non-empty Secret")
    if not tolerance > 0:
        raise InvalidSetting("tolerance", tolerance, "seconds > 0")
    raw_ts = _header(headers, TIMESTAMP_HEADER)
    signature = _header(headers, SIGNATURE_HEADER)
    if raw_ts is None:
        raise _refuse("the X-Slack-Request-Timestamp header is missing", "missing_timestamp")
    if signature is None:
        raise _refuse("the X-Slack-Signature header is missing", "missing_signature")
    text = raw_ts.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 12:
        raise _refuse("the request timestamp is not Unix seconds", "malformed_timestamp")
    timestamp = int(text)
    skew = clock.time() - timestamp
    if skew > tolerance:
        raise _refuse(f"the request is {skew:.0f}s old (limit {tolerance:g}s)", "stale_timestamp")
    if -skew > tolerance:
        raise _refuse(
            f"the request is dated {-skew:.0f}s in the future (limit {tolerance:g}s)",
            "future_timestamp",
        )
    version, sep, digest = signature.strip().partition("=")
    if version != _VERSION or not sep or len(digest) != 64 or not set(digest) <= _HEX:
        raise _refuse("the signature is not a v0 HMAC-SHA256", "malformed_signature")
    expected = sign_slack_request(signing_secret, text, raw_body)
    if not hmac.compare_digest(expected.encode(), f"{version}={digest}".encode()):
        raise _refuse("the signature does not match the body", "invalid_signature")
    if replay_guard is not None and not replay_guard(digest, timestamp + tolerance):
        raise _refuse("this signed request was already accepted once", "replayed_request")
    return timestamp

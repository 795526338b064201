"""Inbound verification: Standard Webhooks, GitHub, Stripe, Slack and generic HMAC.

One entry point for the server's inbound endpoint::

    event = await verify_inbound("standard", request.headers, raw_body, secrets,
                                 state=hub.state, clock=hub.clock, tenant="acme")

Rules, for every scheme:

* the **raw body bytes** are verified (never re-serialised JSON);
* signatures are compared in constant time (``hmac.compare_digest``); several secrets (rotation)
  and several signatures in one header are accepted when any pair matches;
* a timestamp outside ``tolerance`` (default 5 minutes, both directions, from the injected clock)
  is refused;
* failures raise :class:`~connectors.errors.AuthenticationFailed` saying what was wrong (never a
  secret or an expected signature);
* after the signature is valid, the delivery id is remembered in the state backend
  (``StateBackend.seen_add``, ``replay_ttl``, tenant-scoped); a second request with the same id
  raises :class:`ReplayedDelivery`, a :class:`~connectors.errors.Conflict`. A sender's retry
  after a lost answer is such a duplicate, so the server should answer it with a 2xx and not
  process it again.

Delivery ids: Standard Webhooks ``webhook-id``; GitHub ``X-GitHub-Delivery``; Stripe the event
``id`` in the body; Slack and signatures without an id header: the timestamp and signature.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from connectors.adapters.webhook.signing import (
    HmacScheme,
    decode_whsec,
    hmac_digest,
    standard_signature,
)
from connectors.clock import Clock
from connectors.errors import AuthenticationFailed, Conflict
from connectors.secrets.secret import Secret
from connectors.state.base import StateBackend

__all__ = [
    "DEFAULT_REPLAY_TTL",
    "DEFAULT_TOLERANCE",
    "InboundScheme",
    "ReplayedDelivery",
    "VerifiedEvent",
    "verify_inbound",
    "verify_signature",
]

InboundScheme = Literal["standard", "github", "stripe", "slack"] | HmacScheme

#: Seconds a timestamp may differ from now.
DEFAULT_TOLERANCE: Final = 300.0
#: Seconds a delivery id is remembered (senders retry for days).
DEFAULT_REPLAY_TTL: Final = 3 * 24 * 3600.0
#: At most this many signatures in one header are considered.
_MAX_SIGNATURES: Final = 16


class ReplayedDelivery(Conflict):
    """The delivery id was already accepted: answer 2xx, do not process it again."""


@dataclass(frozen=True, slots=True)
class VerifiedEvent:
    """An inbound request whose signature, timestamp and freshness were verified."""

    scheme: str
    #: The delivery id used for replay protection.
    id: str
    timestamp: int | None
    body: bytes
    headers: Mapping[str, str]

    def json(self) -> object:
        """The body parsed as JSON (the signature was checked over the raw bytes)."""
        return json.loads(self.body)


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def _need(headers: Mapping[str, str], name: str, scheme: str) -> str:
    value = headers.get(name.lower())
    if not value:
        raise AuthenticationFailed(
            f"{scheme} webhook: missing header {name}",
            hint="the sender must sign the request; check the endpoint's signing settings",
        )
    return value


def _timestamp(text: str, scheme: str, clock: Clock, tolerance: float) -> int:
    try:
        stamp = int(text)
    except ValueError:
        raise AuthenticationFailed(f"{scheme} webhook: the timestamp is not an integer") from None
    try:
        skew = clock.time() - stamp
    except OverflowError:  # hundreds of digits: no float can hold it
        raise AuthenticationFailed(f"{scheme} webhook: the timestamp is out of range") from None
    if abs(skew) > tolerance:
        direction = "old" if skew > 0 else "far in the future"
        raise AuthenticationFailed(
            f"{scheme} webhook: the timestamp is {abs(skew):.0f}s {direction}, beyond the "
            f"{tolerance:.0f}s tolerance",
            hint="check the sender's and receiver's clocks; replays of old requests are refused",
        )
    return stamp


def _matches(candidates: Sequence[str], expected: Sequence[str]) -> bool:
    found = False
    for given in candidates[:_MAX_SIGNATURES]:
        for want in expected:
            # No early exit: every pair is compared, each in constant time.
            found |= hmac.compare_digest(given.encode(), want.encode())
    return found


def _bad_signature(scheme: str) -> AuthenticationFailed:
    return AuthenticationFailed(
        f"{scheme} webhook: no signature matches",
        hint="check that sender and receiver share the same secret and that the body reached "
        "the verifier unmodified (raw bytes, not re-serialised JSON)",
    )


def verify_signature(
    scheme: InboundScheme,
    headers: Mapping[str, str],
    raw_body: bytes,
    secrets: Sequence[Secret],
    *,
    clock: Clock,
    tolerance: float = DEFAULT_TOLERANCE,
) -> VerifiedEvent:
    """Verify signature and timestamp only (no replay check); see :func:`verify_inbound`."""
    if not isinstance(raw_body, bytes | bytearray):
        raise TypeError("verify the raw body bytes, not a parsed or decoded body")
    body = bytes(raw_body)
    if not secrets:
        raise AuthenticationFailed("webhook: no secret is configured to verify against")
    h = _lower(headers)
    if isinstance(scheme, HmacScheme):
        return _verify_hmac(scheme, h, body, secrets, clock, tolerance)
    if scheme == "standard":
        msg_id = _need(h, "webhook-id", scheme)
        stamp_text = _need(h, "webhook-timestamp", scheme)
        given = _need(h, "webhook-signature", scheme).split()
        stamp = _timestamp(stamp_text, scheme, clock, tolerance)
        expected = [standard_signature(decode_whsec(s), msg_id, stamp_text, body) for s in secrets]
        if not _matches(given, expected):
            raise _bad_signature(scheme)
        return VerifiedEvent(scheme, msg_id, stamp, body, h)
    if scheme == "github":
        given = [_need(h, "X-Hub-Signature-256", scheme).strip().lower()]
        expected = ["sha256=" + hmac_digest(s.reveal().encode(), body).hex() for s in secrets]
        if not _matches(given, expected):
            raise _bad_signature(scheme)
        delivery = h.get("x-github-delivery") or "sig:" + given[0]
        return VerifiedEvent(scheme, delivery, None, body, h)
    if scheme == "stripe":
        return _verify_stripe(h, body, secrets, clock, tolerance)
    if scheme == "slack":
        stamp_text = _need(h, "X-Slack-Request-Timestamp", scheme)
        given = [_need(h, "X-Slack-Signature", scheme).strip()]
        stamp = _timestamp(stamp_text, scheme, clock, tolerance)
        content = f"v0:{stamp_text}:".encode() + body
        expected = ["v0=" + hmac_digest(s.reveal().encode(), content).hex() for s in secrets]
        if not _matches(given, expected):
            raise _bad_signature(scheme)
        return VerifiedEvent(scheme, f"{stamp_text}:{given[0]}", stamp, body, h)
    raise AuthenticationFailed(
        f"unknown inbound webhook scheme {scheme!r}",
        hint="use 'standard', 'github', 'stripe', 'slack' or an HmacScheme",
    )


def _verify_stripe(
    h: Mapping[str, str],
    body: bytes,
    secrets: Sequence[Secret],
    clock: Clock,
    tolerance: float,
) -> VerifiedEvent:
    header = _need(h, "Stripe-Signature", "stripe")
    stamp_text: str | None = None
    given: list[str] = []
    for item in header.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            stamp_text = value
        elif key == "v1":
            given.append(value.lower())
    if stamp_text is None or not given:
        raise AuthenticationFailed("stripe webhook: the signature header has no t= or no v1=")
    stamp = _timestamp(stamp_text, "stripe", clock, tolerance)
    content = f"{stamp_text}.".encode() + body
    # Stripe keys the HMAC with the whole ``whsec_...`` string, not its base64 decoding.
    expected = [hmac_digest(s.reveal().encode(), content).hex() for s in secrets]
    if not _matches(given, expected):
        raise _bad_signature("stripe")
    event_id: str | None = None
    try:
        parsed = json.loads(body)
        if isinstance(parsed, dict) and isinstance(parsed.get("id"), str):
            event_id = parsed["id"]
    except ValueError:
        event_id = None
    return VerifiedEvent("stripe", event_id or f"{stamp_text}:{given[0]}", stamp, body, h)


def _verify_hmac(
    scheme: HmacScheme,
    h: Mapping[str, str],
    body: bytes,
    secrets: Sequence[Secret],
    clock: Clock,
    tolerance: float,
) -> VerifiedEvent:
    name = f"hmac({scheme.header})"
    given = _need(h, scheme.header, name).split()
    msg_id = h.get(scheme.id_header.lower(), "")
    stamp: int | None = None
    stamp_text = ""
    if scheme.signed != "body":
        stamp_text = _need(h, scheme.timestamp_header, name)
        stamp = _timestamp(stamp_text, name, clock, tolerance)
        if scheme.signed == "id.timestamp.body":
            msg_id = _need(h, scheme.id_header, name)
    expected = [scheme.signature(s, msg_id, stamp_text, body) for s in secrets]
    if scheme.encoding == "hex":
        given = [g.lower() for g in given]
        expected = [e.lower() for e in expected]
    if not _matches(given, expected):
        raise _bad_signature(name)
    return VerifiedEvent("hmac", msg_id or f"{stamp_text}:{given[0]}", stamp, body, h)


async def verify_inbound(
    scheme: InboundScheme,
    headers: Mapping[str, str],
    raw_body: bytes,
    secrets: Sequence[Secret],
    *,
    state: StateBackend,
    clock: Clock,
    tolerance: float = DEFAULT_TOLERANCE,
    replay_ttl: float = DEFAULT_REPLAY_TTL,
    tenant: str = "-",
) -> VerifiedEvent:
    """Verify an inbound webhook and refuse replays; returns the :class:`VerifiedEvent`.

    Raises :class:`~connectors.errors.AuthenticationFailed` for a missing, malformed, wrong or
    stale signature, and :class:`ReplayedDelivery` for a delivery id seen within ``replay_ttl``.
    """
    event = verify_signature(scheme, headers, raw_body, secrets, clock=clock, tolerance=tolerance)
    digest = hashlib.sha256(event.id.encode()).hexdigest()[:32]
    key = f"{tenant}:webhook-inbound:{event.scheme}:{digest}"
    if not await state.seen_add(key, ttl=replay_ttl, now=clock.monotonic()):
        raise ReplayedDelivery(
            f"{event.scheme} webhook: delivery already received",
            provider_code="replayed",
            hint="answer 2xx without processing: the sender is retrying or replaying it",
        )
    return event

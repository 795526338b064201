"""Signed, expiring payloads: the one primitive behind session cookies, CSRF tokens and the OAuth
``state`` parameter.

A signed value reads ``<payload>.<signature>``, both base64url without padding. The payload is
compact JSON carrying an ``exp`` (Unix seconds); the signature is HMAC-SHA256 over
``purpose || 0x00 || payload`` with the server secret, so a value signed for one purpose (a
session) is never accepted for another (an OAuth state). :func:`unsign` answers every failure —
malformed, wrong signature, wrong purpose, expired — with ``None``, and compares in constant
time. The signature is compared as text against its one canonical encoding, so a value whose last
character differs only in the padding bits base64 ignores is refused too. Pure functions: the
caller passes the time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Final

__all__ = ["derive", "sign", "unsign"]

_MAX_LENGTH: Final = 4096
JsonScalar = str | int | float | bool | None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, purpose: str, payload: str) -> bytes:
    return hmac.new(key, purpose.encode() + b"\x00" + payload.encode(), hashlib.sha256).digest()


def derive(key: bytes, purpose: str, value: str) -> str:
    """A deterministic keyed digest of ``value`` for ``purpose`` (CSRF tokens from session ids)."""
    return _b64(_mac(key, purpose, value))


def sign(key: bytes, purpose: str, data: Mapping[str, JsonScalar], *, expires_at: float) -> str:
    """``data`` plus ``exp``, signed for ``purpose``."""
    body = dict(data)
    body["exp"] = round(expires_at, 3)
    payload = _b64(json.dumps(body, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_b64(_mac(key, purpose, payload))}"


def unsign(
    key: bytes, purpose: str, token: str | None, *, now: float
) -> dict[str, JsonScalar] | None:
    """The data of a valid, unexpired value signed for ``purpose``; ``None`` otherwise."""
    if not token or len(token) > _MAX_LENGTH or token.count(".") != 1:
        return None
    payload, signature = token.split(".")
    expected = _b64(_mac(key, purpose, payload))
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return None
    try:
        data = json.loads(_unb64(payload))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    expires = data.get("exp")
    if not isinstance(expires, int | float) or isinstance(expires, bool) or expires <= now:
        return None
    if not all(isinstance(v, str | int | float | bool) or v is None for v in data.values()):
        return None
    return data

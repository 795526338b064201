"""Outbound signatures: Standard Webhooks, GitHub style, and custom HMAC schemes.

Pure functions over bytes (no I/O), shared by the sender and the inbound verifiers.

* **Standard Webhooks** (``v1``): ``webhook-signature: v1,<base64 HMAC-SHA256>`` over
  ``"{webhook-id}.{webhook-timestamp}.{raw body}"``, keyed by the base64 part of a ``whsec_``
  secret. During a secret rotation an endpoint has several active secrets and the header carries
  one space-separated ``v1,...`` entry per secret.
* **GitHub**: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``, keyed by the
  secret's UTF-8 bytes (the newest secret only: GitHub receivers check one value).
* **Custom** (:class:`HmacScheme`): header name, algorithm, prefix, encoding, what is signed.

Every delivery also carries ``webhook-id`` and ``webhook-timestamp``, whatever the scheme.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal

from connectors.errors import ConfigurationError
from connectors.secrets.secret import Secret

__all__ = [
    "CROCKFORD",
    "HmacScheme",
    "SigningScheme",
    "decode_whsec",
    "github_signature",
    "hmac_digest",
    "new_message_id",
    "sign_headers",
    "standard_signature",
]

CROCKFORD: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_WHSEC: Final = "whsec_"

Algorithm = Literal["sha1", "sha256", "sha512"]
Encoding = Literal["hex", "base64"]
SignedContent = Literal["body", "timestamp.body", "id.timestamp.body"]


class SigningScheme(StrEnum):
    """How outbound deliveries are signed."""

    STANDARD = "standard"
    GITHUB = "github"
    CUSTOM = "custom"


def new_message_id(now: float | None = None) -> str:
    """``msg_`` + a 26-character ULID (48-bit milliseconds + 80 random bits, Crockford base32).

    Sortable by creation time, unique, and free of ``.`` (the Standard Webhooks rule).
    """
    millis = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    number = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        number, digit = divmod(number, 32)
        chars.append(CROCKFORD[digit])
    return "msg_" + "".join(reversed(chars))


def decode_whsec(secret: Secret | str) -> bytes:
    """The HMAC key of a Standard Webhooks secret: base64 after an optional ``whsec_`` prefix.

    Missing base64 padding is tolerated (as in the reference libraries). The error never shows
    the value.
    """
    text = secret.reveal() if isinstance(secret, Secret) else secret
    if text.startswith(_WHSEC):
        text = text[len(_WHSEC) :]
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        name = secret.name if isinstance(secret, Secret) and secret.name else "the secret"
        raise ConfigurationError(
            f"{name} is not a Standard Webhooks secret (whsec_ + base64)",
            hint="generate one with `connectors webhooks` or use 'whsec_' + base64 of 24-64 bytes",
        ) from exc


def hmac_digest(key: bytes, content: bytes, algorithm: Algorithm = "sha256") -> bytes:
    """HMAC of ``content`` with ``key``."""
    return hmac.new(key, content, getattr(hashlib, algorithm)).digest()


def standard_content(msg_id: str, timestamp: int | str, body: bytes) -> bytes:
    """The bytes a Standard Webhooks signature covers."""
    return f"{msg_id}.{timestamp}.".encode() + body


def standard_signature(key: bytes, msg_id: str, timestamp: int | str, body: bytes) -> str:
    """One ``v1,<base64>`` entry."""
    digest = hmac_digest(key, standard_content(msg_id, timestamp, body))
    return "v1," + base64.b64encode(digest).decode("ascii")


def github_signature(secret: Secret | str, body: bytes) -> str:
    """``sha256=<hex>`` over the raw body, keyed by the secret's UTF-8 bytes."""
    key = (secret.reveal() if isinstance(secret, Secret) else secret).encode()
    return "sha256=" + hmac_digest(key, body).hex()


@dataclass(frozen=True, slots=True)
class HmacScheme:
    """A custom HMAC signature header (outbound) or check (inbound).

    ``signed``: ``"body"`` (the raw body), ``"timestamp.body"`` or ``"id.timestamp.body"``.
    ``key``: ``"utf8"`` (the secret's bytes) or ``"whsec"`` (base64 after ``whsec_``).
    ``id_header``/``timestamp_header`` name the headers carrying the id and timestamp (inbound),
    defaulting to the Standard Webhooks ones.
    """

    header: str = "X-Signature"
    algorithm: Algorithm = "sha256"
    prefix: str = ""
    encoding: Encoding = "hex"
    signed: SignedContent = "body"
    key: Literal["utf8", "whsec"] = "utf8"
    id_header: str = "webhook-id"
    timestamp_header: str = "webhook-timestamp"

    def __post_init__(self) -> None:
        if self.algorithm not in ("sha1", "sha256", "sha512"):
            raise ConfigurationError(f"unsupported HMAC algorithm {self.algorithm!r}")
        if self.encoding not in ("hex", "base64"):
            raise ConfigurationError(f"unsupported signature encoding {self.encoding!r}")
        if self.signed not in ("body", "timestamp.body", "id.timestamp.body"):
            raise ConfigurationError(f"unsupported signed content {self.signed!r}")
        if not self.header or any(c in self.header for c in " :\r\n"):
            raise ConfigurationError(f"invalid signature header name {self.header!r}")

    def key_bytes(self, secret: Secret) -> bytes:
        return decode_whsec(secret) if self.key == "whsec" else secret.reveal().encode()

    def content(self, msg_id: str, timestamp: int | str, body: bytes) -> bytes:
        if self.signed == "body":
            return body
        if self.signed == "timestamp.body":
            return f"{timestamp}.".encode() + body
        return standard_content(msg_id, timestamp, body)

    def signature(self, secret: Secret, msg_id: str, timestamp: int | str, body: bytes) -> str:
        digest = hmac_digest(
            self.key_bytes(secret), self.content(msg_id, timestamp, body), self.algorithm
        )
        text = digest.hex() if self.encoding == "hex" else base64.b64encode(digest).decode()
        return self.prefix + text


def sign_headers(
    scheme: SigningScheme,
    msg_id: str,
    timestamp: int,
    body: bytes,
    secrets: Sequence[Secret],
    *,
    custom: HmacScheme | None = None,
) -> dict[str, str]:
    """The headers of one delivery attempt: id, timestamp and the scheme's signature(s).

    ``secrets`` are the endpoint's active secrets, newest first; there must be at least one.
    """
    if not secrets:
        raise ConfigurationError("the endpoint has no signing secret", hint="add a secret")
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(timestamp)}
    if scheme is SigningScheme.STANDARD:
        headers["webhook-signature"] = " ".join(
            standard_signature(decode_whsec(s), msg_id, timestamp, body) for s in secrets
        )
    elif scheme is SigningScheme.GITHUB:
        headers["X-Hub-Signature-256"] = github_signature(secrets[0], body)
    else:
        if custom is None:
            raise ConfigurationError("a custom signing scheme needs its HmacScheme settings")
        headers[custom.header] = " ".join(
            custom.signature(s, msg_id, timestamp, body) for s in secrets
        )
    return headers

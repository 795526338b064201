"""Rotation policies: what to rotate, how often, how long both credentials stay valid, how to check.

A :class:`RotationPolicy` belongs to one tenant's credential. Its ``kind`` picks the procedure:

=================  ==============================================================================
``oauth_refresh``  refresh the token set (single-flight, compare-and-swap) ahead of expiry, and
                   when it has not been refreshed for ``refresh_if_unused`` seconds (providers
                   expire unused refresh tokens); a verified rotation is one forced refresh
``api_key``        the provider's :class:`~connectors.rotation.rotators.Rotator` creates a new
                   key, both keys work during ``grace``, then the old key is revoked
``webhook_secret`` a new secret is generated; outbound endpoints sign with both during ``grace``
                   and inbound verifiers accept both; then the old one is dropped
``client_secret``  like ``api_key``, through the provider's rotator (OAuth client secrets)
``password``       like ``api_key``, through the provider's rotator
=================  ==============================================================================

Durations are seconds. A policy holds names and numbers only, never a secret.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias, get_args

from connectors.errors import InvalidRequest
from connectors.secrets.refs import CREDENTIAL_NAME, FIELD_NAME

__all__ = [
    "KINDS",
    "PREVIOUS_PREFIX",
    "RotationKind",
    "RotationPolicy",
    "VerifyMode",
    "previous_field",
]

RotationKind: TypeAlias = Literal[
    "oauth_refresh", "api_key", "webhook_secret", "client_secret", "password"
]
VerifyMode: TypeAlias = Literal["health", "none"]
KINDS: Final[frozenset[str]] = frozenset(get_args(RotationKind))

#: During a grace window the old value of field ``F`` is kept as field ``previous.F``.
PREVIOUS_PREFIX: Final = "previous."


def previous_field(name: str) -> str:
    """The field holding the old value of ``name`` during a grace window."""
    return PREVIOUS_PREFIX + name


@dataclass(frozen=True, slots=True)
class RotationPolicy:
    """How one credential of a tenant is rotated.

    ``connector``: the connector instance whose ``health_check()`` verifies the new credential
    (and whose adapter type picks the rotator when ``rotator`` is not set). ``field``: the secret
    field that rotates. ``interval``: seconds between scheduled rotations (``None``: only on
    demand). ``grace``: seconds both old and new stay valid before the old one is revoked; it
    must exceed the longest call plus the credential cache TTL (60 s by default).
    ``endpoints``: outbound webhook endpoints signing with this secret.
    """

    credential: str
    kind: RotationKind
    connector: str | None = None
    field: str = "value"
    interval: float | None = None
    grace: float = 3600.0
    verify: VerifyMode = "health"
    rotator: str | None = None
    refresh_ahead: float = 300.0
    refresh_if_unused: float | None = None
    endpoints: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        problems: list[str] = []
        if not isinstance(self.credential, str) or not CREDENTIAL_NAME.fullmatch(self.credential):
            problems.append("credential must be a credential name (letters, digits, _ . - /)")
        if self.kind not in KINDS:
            problems.append(f"kind must be one of {sorted(KINDS)}, not {self.kind!r}")
        if not FIELD_NAME.fullmatch(self.field) or self.field.startswith(PREVIOUS_PREFIX):
            problems.append(f"field {self.field!r} is not a usable field name")
        if self.interval is not None and not 60 <= self.interval <= 10 * 365 * 86400:
            problems.append("interval must be between 60 s and 10 years (or None)")
        if not 0 <= self.grace <= 90 * 86400:
            problems.append("grace must be between 0 and 90 days")
        if self.verify not in get_args(VerifyMode):
            problems.append("verify must be 'health' or 'none'")
        if self.verify == "health" and self.connector is None and self.kind != "webhook_secret":
            problems.append("verify='health' needs the connector whose health_check() verifies")
        if not 0 <= self.refresh_ahead <= 30 * 86400:
            problems.append("refresh_ahead must be between 0 and 30 days")
        if self.refresh_if_unused is not None and not self.refresh_if_unused >= 60:
            problems.append("refresh_if_unused must be at least 60 s (or None)")
        if self.endpoints and self.kind != "webhook_secret":
            problems.append("endpoints only apply to kind='webhook_secret'")
        if problems:
            raise InvalidRequest(
                f"rotation policy for {self.credential!r}: " + "; ".join(problems),
                hint="fix the policy fields named above",
            )

    @property
    def effective_verify(self) -> VerifyMode:
        """``none`` for a webhook secret without a connector (nothing to probe), else ``verify``."""
        if self.connector is None:
            return "none"
        return self.verify

    def to_json(self) -> str:
        """The policy as a JSON document (names and numbers only)."""
        return json.dumps(
            {
                "credential": self.credential,
                "kind": self.kind,
                "connector": self.connector,
                "field": self.field,
                "interval": self.interval,
                "grace": self.grace,
                "verify": self.verify,
                "rotator": self.rotator,
                "refresh_ahead": self.refresh_ahead,
                "refresh_if_unused": self.refresh_if_unused,
                "endpoints": list(self.endpoints),
            },
            sort_keys=True,
        )

    @classmethod
    def from_mapping(cls, data: Mapping[str, object]) -> RotationPolicy:
        """A policy from a JSON-like mapping (the stored form, or a YAML block)."""
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise InvalidRequest(f"unknown rotation policy fields: {', '.join(unknown)}")
        values = dict(data)
        endpoints = values.get("endpoints") or ()
        if not isinstance(endpoints, Sequence) or isinstance(endpoints, str):
            raise InvalidRequest("endpoints must be a list of endpoint ids")
        values["endpoints"] = tuple(str(e) for e in endpoints)
        return cls(**values)  # type: ignore[arg-type]

    @classmethod
    def from_json(cls, text: str) -> RotationPolicy:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise InvalidRequest("a stored rotation policy must be a JSON object")
        return cls.from_mapping(data)

"""The token set an OAuth grant returns, parsed once at the edge.

Providers disagree on the shape of a token response: Salesforce sends no ``expires_in`` and an
``issued_at`` in *milliseconds*; Slack separates scopes with commas and wraps errors in an
``{"ok": false}`` envelope; RFC 6749 says a refresh response may omit ``scope`` and
``refresh_token`` (meaning: unchanged). :meth:`TokenSet.from_response` absorbs those differences so
the rest of the framework sees one immutable value whose token fields are :class:`Secret` objects.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, TypeAlias

from connectors.errors import AuthenticationFailed
from connectors.secrets import Secret

__all__ = ["JsonValue", "StoredToken", "TokenSet", "parse_scopes"]

#: A JSON value as kept in :attr:`TokenSet.extra` (secret-looking keys removed).
JsonValue: TypeAlias = str | int | float | bool | list["JsonValue"] | dict[str, "JsonValue"] | None

# Fields with a dedicated attribute; never copied into ``extra``.
_KNOWN: Final = frozenset(
    {
        "access_token",
        "refresh_token",
        "token_type",
        "expires_in",
        "expires_at",
        "scope",
        "issued_at",
        "instance_url",
        "ok",
    }
)
# Keys whose values may be credentials; dropped from ``extra`` at every nesting level.
_SECRET_WORDS: Final = ("token", "secret", "password", "signature", "assertion", "code", "key")
_SCOPE_SPLIT: Final = re.compile(r"[\s,]+")
# ``issued_at`` above this is taken as milliseconds (1e11 s is the year 5138).
_MS_THRESHOLD: Final = 1e11


def parse_scopes(value: object) -> frozenset[str]:
    """Scopes from a ``scope`` field: space- (RFC 6749) or comma-separated (Slack), or a list."""
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(s for s in _SCOPE_SPLIT.split(value) if s)
    if isinstance(value, list | tuple | set | frozenset):
        return frozenset(str(s).strip() for s in value if str(s).strip())
    raise AuthenticationFailed(
        f"token response has a 'scope' of type {type(value).__name__}; expected a string"
    )


def _number(value: object, name: str) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise AuthenticationFailed(f"token response field {name!r} is a boolean, not a number")
    if isinstance(value, int | float):
        result = float(value)
    elif isinstance(value, str):
        try:
            result = float(value.strip())
        except ValueError:
            raise AuthenticationFailed(
                f"token response field {name!r} is not a number: {value[:32]!r}"
            ) from None
    else:
        raise AuthenticationFailed(
            f"token response field {name!r} has type {type(value).__name__}, expected a number"
        )
    if not math.isfinite(result):
        raise AuthenticationFailed(f"token response field {name!r} is not finite")
    return result


def _looks_secret(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def _public(value: object) -> JsonValue:
    """A copy of a JSON value without any secret-looking key (recursively)."""
    if isinstance(value, Mapping):
        return {str(k): _public(v) for k, v in value.items() if not _looks_secret(str(k))}
    if isinstance(value, list | tuple):
        return [_public(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise AuthenticationFailed(f"token response field {name!r} is missing or not a string")
    return value


@dataclass(frozen=True, slots=True)
class TokenSet:
    """An access token and what came with it. Token values are :class:`Secret`; repr is masked.

    ``expires_at`` and ``issued_at`` are Unix epoch seconds (``Clock.time()`` scale);
    ``expires_at`` is ``None`` when the provider did not say (Salesforce), in which case the
    token is refreshed only when the provider rejects it. ``extra`` keeps the response's other
    fields (Slack's ``team``, Salesforce's ``id``) minus anything that looks like a credential.
    """

    access_token: Secret
    refresh_token: Secret | None = None
    token_type: str = "Bearer"  # noqa: S105 - a scheme name, not a credential
    expires_at: float | None = None
    scopes: frozenset[str] = frozenset()
    issued_at: float | None = None
    instance_url: str | None = None
    extra: Mapping[str, JsonValue] = field(default_factory=dict)

    @classmethod
    def from_response(
        cls, body: Mapping[str, object], now: float, *, previous: TokenSet | None = None
    ) -> TokenSet:
        """Parse a token endpoint's JSON body received at ``now`` (epoch seconds).

        ``previous`` is the token set being refreshed: per RFC 6749 §6 an omitted
        ``refresh_token`` or ``scope`` means "unchanged", and Salesforce omits ``instance_url``
        on some refreshes. A *present* ``refresh_token`` replaces the old one (rotation).
        Raises :class:`AuthenticationFailed` (naming the field, never a value) for a body
        without a usable ``access_token`` or with malformed numbers.
        """
        access = Secret(_text(body.get("access_token"), "access_token"), name="access_token")
        raw_refresh = body.get("refresh_token")
        refresh: Secret | None
        if raw_refresh is None or raw_refresh == "":
            refresh = previous.refresh_token if previous is not None else None
        else:
            refresh = Secret(_text(raw_refresh, "refresh_token"), name="refresh_token")

        issued = _number(body.get("issued_at"), "issued_at")
        if issued is not None and issued > _MS_THRESHOLD:
            issued /= 1000.0
        issued_at = issued if issued is not None else now

        expires_in = _number(body.get("expires_in"), "expires_in")
        expires_at: float | None
        if expires_in is not None:
            # Count from our receipt, not the provider's clock: skew cannot make us late.
            expires_at = now + expires_in
        else:
            expires_at = _number(body.get("expires_at"), "expires_at")

        if "scope" in body and body["scope"] is not None:
            scopes = parse_scopes(body["scope"])
        else:
            scopes = previous.scopes if previous is not None else frozenset()

        instance = body.get("instance_url")
        if instance is not None and not isinstance(instance, str):
            raise AuthenticationFailed("token response field 'instance_url' is not a string")
        if instance is None and previous is not None:
            instance = previous.instance_url

        token_type = body.get("token_type")
        extra = {
            str(k): _public(v)
            for k, v in body.items()
            if k not in _KNOWN and not _looks_secret(str(k))
        }
        return cls(
            access_token=access,
            refresh_token=refresh,
            token_type=token_type if isinstance(token_type, str) and token_type else "Bearer",
            expires_at=expires_at,
            scopes=scopes,
            issued_at=issued_at,
            instance_url=instance,
            extra=extra,
        )

    def expires_within(self, seconds: float, now: float) -> bool:
        """Whether the token expires less than ``seconds`` after ``now``; ``False`` if unknown."""
        return self.expires_at is not None and self.expires_at - now < seconds

    def is_expired(self, now: float) -> bool:
        """Whether the known lifetime has passed (``False`` when the lifetime is unknown)."""
        return self.expires_at is not None and self.expires_at <= now

    def same_access_token(self, other: TokenSet | None) -> bool:
        """Constant-time check that ``other`` carries the same access token."""
        return other is not None and self.access_token == other.access_token

    def reveal_for_storage(self) -> dict[str, JsonValue]:
        """A JSON-ready dict **with clear token values**, for the encrypted credential store only.

        Never log, return or audit the result; :meth:`from_storage` reads it back.
        """
        return {
            "access_token": self.access_token.reveal(),
            "refresh_token": None if self.refresh_token is None else self.refresh_token.reveal(),
            "token_type": self.token_type,
            "expires_at": self.expires_at,
            "scopes": list[JsonValue](sorted(self.scopes)),
            "issued_at": self.issued_at,
            "instance_url": self.instance_url,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_storage(cls, data: Mapping[str, object]) -> TokenSet:
        """Rebuild a token set from :meth:`reveal_for_storage` output."""
        refresh = data.get("refresh_token")
        scopes = data.get("scopes") or []
        extra = data.get("extra") or {}
        token_type = data.get("token_type")
        instance = data.get("instance_url")
        return cls(
            access_token=Secret(
                _text(data.get("access_token"), "access_token"), name="access_token"
            ),
            refresh_token=(
                None
                if refresh is None
                else Secret(_text(refresh, "refresh_token"), name="refresh_token")
            ),
            token_type=token_type if isinstance(token_type, str) else "Bearer",
            expires_at=_number(data.get("expires_at"), "expires_at"),
            scopes=parse_scopes(list(scopes) if isinstance(scopes, list | tuple) else scopes),
            issued_at=_number(data.get("issued_at"), "issued_at"),
            instance_url=instance if isinstance(instance, str) else None,
            extra=(
                {str(k): _public(v) for k, v in extra.items()} if isinstance(extra, Mapping) else {}
            ),
        )


@dataclass(frozen=True, slots=True)
class StoredToken:
    """A token set with the store's version number (for compare-and-swap)."""

    token: TokenSet
    version: int

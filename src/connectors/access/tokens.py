"""API tokens for the server: shown once, stored hashed, scoped to one tenant and one role.

A token reads ``cft_<id>_<secret>``: the ``cft_`` prefix makes a leaked token easy to recognise
(secret scanners, log redaction), ``<id>`` is 12 hex characters naming the token publicly (it is
what ``list`` shows and ``revoke`` takes), and ``<secret>`` is 32 random bytes, URL-safe base64.
Only the SHA-256 of the secret part is stored; a slow hash buys nothing for 256 random bits.

:meth:`ApiTokens.verify` answers every failure — malformed, unknown id, wrong secret, expired,
revoked — with the same :class:`~connectors.errors.AuthenticationFailed`, and compares hashes in
constant time even for an unknown id. Verified tokens are cached for ``cache_ttl`` seconds (the
hash is still compared and the expiry still checked on every call); a revocation is effective at
once in the revoking process and within ``cache_ttl`` elsewhere. The last-used time is written at
most once per ``touch_interval``.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from connectors.access.roles import Role
from connectors.clock import Clock, system_clock
from connectors.errors import AuthenticationFailed, InvalidRequest
from connectors.secrets.secret import Secret
from connectors.storage.access import ApiTokenRow
from connectors.storage.db import Database

__all__ = ["TOKEN_PREFIX", "ApiTokens", "TokenInfo"]

TOKEN_PREFIX: Final = "cft_"  # noqa: S105 - the public prefix, not a secret
_TOKEN_RE: Final = re.compile(r"cft_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
_DUMMY_HASH: Final = hashlib.sha256(b"no such token").hexdigest()
_CACHE_MAX = 10_000


def _hash(secret_part: str) -> str:
    return hashlib.sha256(secret_part.encode()).hexdigest()


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """What a token grants and its bookkeeping. Never holds the secret or its hash."""

    id: str
    tenant: str
    role: Role
    name: str
    created_by: str
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        """Neither revoked nor expired at ``now``."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


def _info(row: ApiTokenRow) -> TokenInfo:
    created = _dt(row.created_at)
    assert created is not None
    return TokenInfo(
        id=row.id,
        tenant=row.tenant,
        role=Role(row.role),
        name=row.name,
        created_by=row.created_by,
        created_at=created,
        expires_at=_dt(row.expires_at),
        revoked_at=_dt(row.revoked_at),
        last_used_at=_dt(row.last_used_at),
    )


def _invalid() -> AuthenticationFailed:
    return AuthenticationFailed(
        "invalid API token",
        hint="send a current token as 'Authorization: Bearer cft_...'; "
        "an admin creates one with `connectors tokens create`",
    )


class ApiTokens:
    """Creates, verifies, lists and revokes API tokens stored in ``access_api_tokens``."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock = system_clock,
        cache_ttl: float = 5.0,
        touch_interval: float = 60.0,
    ) -> None:
        self._db = db
        self._clock = clock
        self._ttl = cache_ttl
        self._touch_interval = touch_interval
        # token id -> (secret hash, info, cached until [monotonic])
        self._cache: dict[str, tuple[str, TokenInfo, float]] = {}

    async def create(
        self,
        tenant: str,
        role: Role | str,
        *,
        name: str,
        created_by: str,
        expires_at: datetime | None = None,
    ) -> tuple[Secret, TokenInfo]:
        """A new token. The plaintext (a :class:`Secret`) is returned once and never stored."""
        role = Role.parse(role)
        for label, value in (("tenant", tenant), ("name", name), ("created_by", created_by)):
            if not isinstance(value, str) or not value.strip() or len(value) > 100:
                raise InvalidRequest(f"token {label} must be a non-empty string of <= 100 chars")
        now = self._clock.time()
        expires: float | None = None
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise InvalidRequest("expires_at must be timezone-aware (UTC)")
            expires = expires_at.timestamp()
            if expires <= now:
                raise InvalidRequest("expires_at is in the past: choose a future time")
        for _ in range(5):
            token_id = secrets.token_hex(6)
            secret_part = secrets.token_urlsafe(32)
            row = ApiTokenRow(
                id=token_id,
                tenant=tenant,
                role=role.value,
                name=name,
                secret_hash=_hash(secret_part),
                created_by=created_by,
                created_at=now,
                expires_at=expires,
                revoked_at=None,
                last_used_at=None,
            )
            try:
                async with self._db.session() as session:
                    session.add(row)
            except IntegrityError:  # id collision: 48 random bits, so practically never
                continue
            plaintext = Secret(
                f"{TOKEN_PREFIX}{token_id}_{secret_part}", name=f"api-token/{token_id}"
            )
            return plaintext, _info(row)
        raise RuntimeError("could not allocate a unique token id")

    async def verify(self, token: Secret | str) -> TokenInfo:
        """The token's grant, or :class:`AuthenticationFailed` (the same for every reason)."""
        plaintext = token.reveal() if isinstance(token, Secret) else token
        match = _TOKEN_RE.fullmatch(plaintext) if isinstance(plaintext, str) else None
        if match is None:
            raise _invalid()
        token_id, secret_part = match.groups()
        presented = _hash(secret_part)
        mono = self._clock.monotonic()
        cached = self._cache.get(token_id)
        if cached is not None and cached[2] > mono:
            stored, info = cached[0], cached[1]
        else:
            async with self._db.session() as session:
                row = await session.get(ApiTokenRow, token_id)
            if row is None:
                hmac.compare_digest(presented, _DUMMY_HASH)  # same work as a known id
                raise _invalid()
            stored, info = row.secret_hash, _info(row)
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[token_id] = (stored, info, mono + self._ttl)
        if not hmac.compare_digest(presented, stored):
            raise _invalid()
        now = self._clock.time()
        if not info.active(datetime.fromtimestamp(now, UTC)):
            raise _invalid()
        last = info.last_used_at
        if last is None or now - last.timestamp() >= self._touch_interval:
            info = await self._touch(token_id, stored, info, now)
        return info

    async def _touch(self, token_id: str, stored: str, info: TokenInfo, now: float) -> TokenInfo:
        async with self._db.session() as session:
            await session.execute(
                update(ApiTokenRow).where(ApiTokenRow.id == token_id).values(last_used_at=now)
            )
        info = replace(info, last_used_at=_dt(now))
        cached = self._cache.get(token_id)
        if cached is not None:
            self._cache[token_id] = (stored, info, cached[2])
        return info

    async def get(self, token_id: str) -> TokenInfo | None:
        """One token's information by its public id."""
        async with self._db.session() as session:
            row = await session.get(ApiTokenRow, token_id)
        return None if row is None else _info(row)

    async def revoke(self, token_id: str, *, tenant: str | None = None) -> bool:
        """Revoke a token (only within ``tenant`` when given). Whether it was active."""
        self._cache.pop(token_id, None)
        stmt = (
            update(ApiTokenRow)
            .where(ApiTokenRow.id == token_id, ApiTokenRow.revoked_at.is_(None))
            .values(revoked_at=self._clock.time())
        )
        if tenant is not None:
            stmt = stmt.where(ApiTokenRow.tenant == tenant)
        async with self._db.session() as session:
            result = await session.execute(stmt)
        return bool(getattr(result, "rowcount", 0))

    async def list(self, tenant: str, *, include_revoked: bool = True) -> builtins.list[TokenInfo]:
        """The tenant's tokens, newest first."""
        stmt = select(ApiTokenRow).where(ApiTokenRow.tenant == tenant)
        if not include_revoked:
            stmt = stmt.where(ApiTokenRow.revoked_at.is_(None))
        stmt = stmt.order_by(ApiTokenRow.created_at.desc(), ApiTokenRow.id)
        async with self._db.session() as session:
            return [_info(r) for r in (await session.execute(stmt)).scalars()]

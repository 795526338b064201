"""In-memory :class:`TokenStore` and :class:`LockProvider`: one process, tests, the default hub.

Both keep real semantics, so the token manager's tests exercise what Redis and SQL will do:
the store's ``save`` is a true compare-and-swap on a version number, and the lock is a lease that
expires after its TTL on an injected clock and hands out increasing fencing tokens.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from connectors.auth.tokens import StoredToken, TokenSet
from connectors.clock import Clock, system_clock
from connectors.errors import Conflict

__all__ = ["InMemoryLockProvider", "InMemoryTokenStore"]


class InMemoryTokenStore:
    """Token sets per ``(tenant, name)`` with versioned compare-and-swap saves (thread-safe)."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, str], StoredToken] = {}
        self._reauth: dict[tuple[str, str], str] = {}
        self._mutex = threading.Lock()

    async def load(self, tenant: str, name: str) -> StoredToken | None:
        return self._tokens.get((tenant, name))

    async def save(
        self, tenant: str, name: str, token: TokenSet, *, expected_version: int | None
    ) -> int:
        key = (tenant, name)
        with self._mutex:
            current = self._tokens.get(key)
            current_version = None if current is None else current.version
            if current_version != expected_version:
                raise Conflict(
                    f"token for credential {name!r} changed concurrently "
                    f"(expected version {expected_version}, found {current_version})",
                    tenant=tenant,
                    provider_code="version_conflict",
                )
            version = 1 if current is None else current.version + 1
            self._tokens[key] = StoredToken(token, version)
            self._reauth.pop(key, None)
            return version

    async def mark_needs_reauth(self, tenant: str, name: str, reason: str) -> None:
        self._reauth[(tenant, name)] = reason

    def needs_reauth(self, tenant: str, name: str) -> str | None:
        """The reason recorded by :meth:`mark_needs_reauth`, if the mark is still set."""
        return self._reauth.get((tenant, name))

    def __repr__(self) -> str:
        return f"InMemoryTokenStore(credentials={len(self._tokens)})"


@dataclass(slots=True)
class _Lease:
    owner: str
    expires: float
    fence: int


class InMemoryLockProvider:
    """Thread-safe lease locks: a TTL on ``clock.monotonic()``, increasing fencing tokens."""

    def __init__(self, *, clock: Clock = system_clock) -> None:
        self._clock = clock
        self._leases: dict[str, _Lease] = {}
        self._fence = 0
        self._mutex = threading.Lock()

    async def acquire(self, key: str, *, owner: str, ttl: float) -> int | None:
        if ttl <= 0:
            raise ValueError("a lease needs a positive ttl")
        with self._mutex:
            now = self._clock.monotonic()
            lease = self._leases.get(key)
            if lease is not None and lease.expires > now and lease.owner != owner:
                return None
            self._fence += 1
            self._leases[key] = _Lease(owner, now + ttl, self._fence)
            return self._fence

    async def release(self, key: str, *, owner: str) -> bool:
        with self._mutex:
            lease = self._leases.get(key)
            if lease is None or lease.owner != owner:
                return False
            del self._leases[key]
            return lease.expires > self._clock.monotonic()

    def holder(self, key: str) -> str | None:
        """The owner of a live lease on ``key`` (for tests and diagnostics)."""
        lease = self._leases.get(key)
        if lease is None or lease.expires <= self._clock.monotonic():
            return None
        return lease.owner

    def __repr__(self) -> str:
        return f"InMemoryLockProvider(leases={len(self._leases)})"

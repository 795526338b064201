"""The token manager: cached tokens, proactive renewal, and single-flight refresh.

Rotating refresh tokens are the most common failure of the surveyed integration frameworks
(Airbyte #82783, Meltano #106, n8n #12742): two workers refresh at once, the provider invalidates
the refresh token the loser used, and the credential is dead. The manager prevents that at three
levels (security invariant 4):

1. **In process**: concurrent callers for one ``(tenant, credential)`` share one in-flight refresh
   task; a caller whose stale token was already replaced gets the new one without refreshing.
2. **Across processes**: the refresh runs under a :class:`LockProvider` lease. After taking it the
   manager *re-reads the store*: if another holder already stored a newer version, that token is
   used and the token endpoint is not called. Callers that do not get the lease poll the store
   with capped exponential backoff until the version changes or the lease frees up.
3. **Persistence before use**: the new token set, including a rotated refresh token, is saved
   with compare-and-swap on the version *before* anyone is handed the new access token.

``invalid_grant`` marks the credential as needing re-authorisation in the store and raises
:class:`ReauthorizationRequired`. Every refresh outcome goes to the ``on_refresh`` hook (for the
audit log) as a :class:`RefreshEvent`, which names the tenant, credential, outcome and version,
never a token.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeAlias

import structlog

from connectors.auth.grants import TokenGrant
from connectors.auth.ports import LockProvider, TokenStore
from connectors.auth.tokens import StoredToken, TokenSet
from connectors.clock import Clock, system_clock
from connectors.errors import (
    AuthenticationFailed,
    CircuitOpen,
    Conflict,
    ConnectorError,
    CredentialMissing,
    ReauthorizationRequired,
    ServiceUnavailable,
    TransientError,
)

__all__ = ["RefreshEvent", "RefreshHook", "RefreshOutcome", "TokenManager"]

RefreshOutcome: TypeAlias = Literal["refreshed", "reused", "needs_reauth", "failed", "conflict"]
_Key: TypeAlias = tuple[str, str]
_FlightKey: TypeAlias = tuple[asyncio.AbstractEventLoop, str, str]

_log = structlog.get_logger("connectors.auth")


@dataclass(frozen=True, slots=True)
class RefreshEvent:
    """What one refresh did, for audit and metrics. Holds no token value.

    ``outcome``: ``refreshed`` (the token endpoint was called and the result stored),
    ``reused`` (another caller or process had already refreshed; its token was adopted),
    ``needs_reauth`` (the grant is gone), ``failed`` (any other error, see ``error``),
    ``conflict`` (the compare-and-swap lost; the winner's token was adopted).
    """

    tenant: str
    credential: str
    outcome: RefreshOutcome
    version: int | None
    duration: float
    error: str | None = None


RefreshHook: TypeAlias = Callable[[RefreshEvent], Awaitable[None]]


def _is_newer(stored: StoredToken, stale: TokenSet | None, stale_version: int | None) -> bool:
    """Whether ``stored`` replaces the token the caller found stale."""
    if stale is None:
        return True
    if stale_version is not None:
        return stored.version != stale_version
    return not stored.token.same_access_token(stale)


class TokenManager:
    """Hands out valid tokens per ``(tenant, credential)`` and refreshes them single-flight.

    ``refresh_margin``: renew a token whose known lifetime ends within this many seconds.
    ``lock_ttl``: the refresh lease; it must exceed a token call's timeout. ``wait_timeout``
    (default ``2 * lock_ttl``): how long a caller waits for another process's refresh before
    giving up with :class:`ServiceUnavailable`. ``owner`` names this process's leases.
    """

    def __init__(
        self,
        store: TokenStore,
        locks: LockProvider,
        *,
        clock: Clock = system_clock,
        refresh_margin: float = 60.0,
        lock_ttl: float = 30.0,
        wait_timeout: float | None = None,
        poll_interval: float = 0.05,
        max_poll_interval: float = 1.0,
        on_refresh: RefreshHook | None = None,
        owner: str | None = None,
    ) -> None:
        if refresh_margin < 0 or lock_ttl <= 0 or poll_interval <= 0:
            raise ValueError("refresh_margin must be >= 0; lock_ttl and poll_interval > 0")
        self.store = store
        self.locks = locks
        self.clock = clock
        self.refresh_margin = refresh_margin
        self.lock_ttl = lock_ttl
        self.wait_timeout = 2 * lock_ttl if wait_timeout is None else wait_timeout
        self.poll_interval = poll_interval
        self.max_poll_interval = max(max_poll_interval, poll_interval)
        self.on_refresh = on_refresh
        self.owner = owner or f"token-manager-{uuid.uuid4().hex}"
        self._grants: dict[_Key, TokenGrant] = {}
        self._cache: dict[_Key, StoredToken] = {}
        # One in-flight refresh per credential *per event loop*: a manager shared by threads that
        # each run a loop coalesces within each loop, and the lease serialises across them.
        self._inflight: dict[_FlightKey, asyncio.Task[StoredToken]] = {}

    # --- configuration ---------------------------------------------------------------------------

    def register(self, tenant: str, credential: str, grant: TokenGrant) -> None:
        """Use ``grant`` to renew ``credential`` of ``tenant`` (a per-call grant overrides it)."""
        self._grants[_key(tenant, credential)] = grant

    def forget(self, tenant: str, credential: str) -> None:
        """Drop the cached token (the next call reads the store again)."""
        self._cache.pop(_key(tenant, credential), None)

    async def install(self, tenant: str, credential: str, token: TokenSet) -> int:
        """Store a token obtained outside a refresh (the OAuth connect callback); CAS-safe.

        Returns the new version. Raises :class:`Conflict` if the credential changed meanwhile.
        """
        key = _key(tenant, credential)
        current = await self.store.load(tenant, credential)
        version = await self.store.save(
            tenant,
            credential,
            token,
            expected_version=None if current is None else current.version,
        )
        self._remember(key, StoredToken(token, version))
        return version

    # --- use --------------------------------------------------------------------------------------

    async def get_token(
        self, tenant: str, credential: str, *, grant: TokenGrant | None = None
    ) -> TokenSet:
        """A token to use now: cached, else stored, else obtained from the grant.

        A token whose known lifetime ends within ``refresh_margin`` is renewed first; if that
        renewal fails transiently while the token is still valid, the token is used anyway.
        """
        key = _key(tenant, credential)
        entry = self._cache.get(key)
        if entry is None:
            entry = await self.store.load(tenant, credential)
            if entry is None:
                return await self.refresh(tenant, credential, stale=None, grant=grant)
            entry = self._remember(key, entry)
        now = self.clock.time()
        if entry.token.expires_within(self.refresh_margin, now) and self._grant(key, grant):
            try:
                return await self.refresh(tenant, credential, stale=entry.token, grant=grant)
            except (TransientError, CircuitOpen) as exc:
                if entry.token.is_expired(now):
                    raise
                _log.warning(
                    "auth.proactive_refresh_failed",
                    tenant=tenant,
                    credential=credential,
                    error=exc.code,
                    expires_in=round((entry.token.expires_at or now) - now, 1),
                )
        return entry.token

    async def refresh(
        self,
        tenant: str,
        credential: str,
        *,
        stale: TokenSet | None,
        grant: TokenGrant | None = None,
    ) -> TokenSet:
        """Replace ``stale`` (the token the caller found expired or rejected) with a new one.

        ``stale=None`` means the caller has no token. If the cached token already differs from
        ``stale``, it is returned at once; otherwise the caller joins the in-flight refresh or
        starts one.
        """
        key = _key(tenant, credential)
        cached = self._cache.get(key)
        if cached is not None and (stale is None or not cached.token.same_access_token(stale)):
            return cached.token
        flight = (asyncio.get_running_loop(), *key)
        task = self._inflight.get(flight)
        if task is None:
            chosen = self._grant(key, grant)
            if chosen is None:
                raise await self._no_grant(key, stale)
            stale_version = cached.version if cached is not None else None
            task = asyncio.ensure_future(self._refresh_once(key, stale, stale_version, chosen))
            self._inflight[flight] = task
            task.add_done_callback(self._finished(flight))
        entry = await asyncio.shield(task)
        return entry.token

    # --- internals --------------------------------------------------------------------------------

    def _grant(self, key: _Key, grant: TokenGrant | None) -> TokenGrant | None:
        return grant if grant is not None else self._grants.get(key)

    async def _no_grant(self, key: _Key, stale: TokenSet | None) -> ConnectorError:
        tenant, credential = key
        if stale is None and await self.store.load(tenant, credential) is None:
            return CredentialMissing(credential, tenant=tenant)
        return AuthenticationFailed(
            f"the token of credential {credential!r} needs renewing and no grant can renew it",
            tenant=tenant,
            hint="store a new token or configure a refresh grant for this credential",
        )

    def _finished(self, flight: _FlightKey) -> Callable[[asyncio.Task[StoredToken]], None]:
        def done(task: asyncio.Task[StoredToken]) -> None:
            if self._inflight.get(flight) is task:
                del self._inflight[flight]
            if not task.cancelled():
                task.exception()  # mark retrieved: every awaiter may have been cancelled

        return done

    def _remember(self, key: _Key, entry: StoredToken) -> StoredToken:
        """Cache ``entry`` unless a newer version is cached; return what is cached."""
        cached = self._cache.get(key)
        if cached is not None and cached.version > entry.version:
            return cached
        self._cache[key] = entry
        return entry

    @staticmethod
    def lock_key(tenant: str, credential: str) -> str:
        """The lease name guarding refreshes of one tenant's credential."""
        # Length-prefixed so no (tenant, credential) pair can spell another pair's key.
        return f"connectors:token-refresh:{len(tenant)}:{tenant}:{credential}"

    async def _refresh_once(
        self,
        key: _Key,
        stale: TokenSet | None,
        stale_version: int | None,
        grant: TokenGrant,
    ) -> StoredToken:
        tenant, credential = key
        lock_key = self.lock_key(*key)
        # A lease owner per attempt, so two loops of this process exclude each other too.
        owner = f"{self.owner}/{uuid.uuid4().hex[:12]}"
        started = self.clock.monotonic()
        give_up = started + self.wait_timeout
        delay = self.poll_interval
        while True:
            fence = await self.locks.acquire(lock_key, owner=owner, ttl=self.lock_ttl)
            if fence is not None:
                try:
                    return await self._refresh_locked(key, stale, stale_version, grant, started)
                finally:
                    await self._release(lock_key, owner)
            stored = await self.store.load(tenant, credential)
            if stored is not None and _is_newer(stored, stale, stale_version):
                entry = self._remember(key, stored)
                await self._emit(key, "reused", entry.version, started)
                return entry
            if self.clock.monotonic() >= give_up:
                await self._emit(key, "failed", None, started, "refresh_lock_timeout")
                raise ServiceUnavailable(
                    f"another process is refreshing credential {credential!r} and did not "
                    f"finish within {self.wait_timeout:g}s",
                    tenant=tenant,
                    provider_code="refresh_lock_timeout",
                )
            await self.clock.sleep(delay)
            delay = min(delay * 2, self.max_poll_interval)

    async def _refresh_locked(
        self,
        key: _Key,
        stale: TokenSet | None,
        stale_version: int | None,
        grant: TokenGrant,
        started: float,
    ) -> StoredToken:
        tenant, credential = key
        stored = await self.store.load(tenant, credential)
        if stored is not None and _is_newer(stored, stale, stale_version):
            entry = self._remember(key, stored)
            await self._emit(key, "reused", entry.version, started)
            return entry
        expected = None if stored is None else stored.version
        try:
            token = await grant.obtain(None if stored is None else stored.token)
        except ReauthorizationRequired as exc:
            exc.with_context(tenant=tenant)
            # Someone outside our lease may have rotated the token meanwhile: prefer theirs.
            latest = await self.store.load(tenant, credential)
            if latest is not None and latest.version != expected:
                entry = self._remember(key, latest)
                await self._emit(key, "reused", entry.version, started)
                return entry
            await self.store.mark_needs_reauth(tenant, credential, exc.code)
            self._cache.pop(key, None)
            await self._emit(key, "needs_reauth", expected, started, exc.code)
            raise
        except ConnectorError as exc:
            exc.with_context(tenant=tenant)
            await self._emit(key, "failed", expected, started, exc.code)
            raise
        try:
            version = await self.store.save(tenant, credential, token, expected_version=expected)
        except Conflict:
            latest = await self.store.load(tenant, credential)
            await self._emit(
                key, "conflict", None if latest is None else latest.version, started, "conflict"
            )
            if latest is None:
                raise
            return self._remember(key, latest)
        entry = self._remember(key, StoredToken(token, version))
        await self._emit(key, "refreshed", version, started)
        return entry

    async def _release(self, lock_key: str, owner: str) -> None:
        try:
            released = await self.locks.release(lock_key, owner=owner)
        except Exception as exc:  # the lease expires by itself; never mask the refresh result
            _log.warning("auth.refresh_lock_release_failed", error=type(exc).__name__)
            return
        if not released:
            _log.warning("auth.refresh_lease_expired_before_release", ttl=self.lock_ttl)

    async def _emit(
        self,
        key: _Key,
        outcome: RefreshOutcome,
        version: int | None,
        started: float,
        error: str | None = None,
    ) -> None:
        tenant, credential = key
        event = RefreshEvent(
            tenant=tenant,
            credential=credential,
            outcome=outcome,
            version=version,
            duration=max(self.clock.monotonic() - started, 0.0),
            error=error,
        )
        log = _log.info if outcome in ("refreshed", "reused") else _log.warning
        log(
            "auth.token_refresh",
            tenant=tenant,
            credential=credential,
            outcome=outcome,
            version=version,
            error=error,
        )
        if self.on_refresh is None:
            return
        try:
            await self.on_refresh(event)
        except Exception as exc:  # an audit sink failure must not break the call path
            _log.error("auth.refresh_hook_failed", error=type(exc).__name__, outcome=outcome)

    def __repr__(self) -> str:
        return (
            f"TokenManager(owner={self.owner!r}, cached={len(self._cache)}, "
            f"inflight={len(self._inflight)})"
        )


def _key(tenant: str, credential: str) -> _Key:
    if not tenant or not credential:
        raise ValueError("a token is addressed by a non-empty tenant and credential name")
    return (tenant, credential)

"""The token manager's ports on the real stores.

- :class:`CredentialTokenStore`: token sets persisted in the encrypted per-tenant credential
  store, with its compare-and-swap versions, so a rotated refresh token survives restarts and is
  shared by every process that reads the same database.
- :class:`StateLockProvider`: lease locks with fencing tokens on the shared
  :class:`~connectors.state.StateBackend` (in memory for one process, Redis for many).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from connectors.auth.tokens import StoredToken, TokenSet
from connectors.clock import Clock, system_clock
from connectors.errors import Conflict, CredentialMissing
from connectors.secrets.credential import JSONValue
from connectors.secrets.store import CredentialStore
from connectors.state.base import StateBackend

__all__ = ["TOKEN_FIELD", "CredentialTokenStore", "StateLockProvider"]

#: The credential field that holds the serialised token set.
TOKEN_FIELD = "token_set"  # noqa: S105 - a field name, not a secret


class CredentialTokenStore:
    """A :class:`~connectors.auth.ports.TokenStore` over the encrypted credential store.

    The whole token set (access and refresh token, expiry, scopes) is one encrypted field of the
    credential; granted scopes and the expiry are also kept as non-secret metadata so health
    and scope checks can read them without decrypting.
    """

    def __init__(
        self,
        store: CredentialStore | Callable[[], CredentialStore],
        *,
        actor: str = "token-manager",
    ) -> None:
        if isinstance(store, CredentialStore):
            fixed = store
            self._get_store: Callable[[], CredentialStore] = lambda: fixed
        else:
            self._get_store = store
        self._actor = actor

    @property
    def _store(self) -> CredentialStore:
        # Built on first use: a Hub whose connectors never refresh tokens needs no master key.
        return self._get_store()

    async def load(self, tenant: str, name: str) -> StoredToken | None:
        try:
            credential = await self._store.get(tenant, name, fresh=True)
        except CredentialMissing:
            return None
        field = credential.fields.get(TOKEN_FIELD)
        if field is None:
            return None
        return StoredToken(TokenSet.from_storage(json.loads(field.reveal())), credential.version)

    async def save(
        self, tenant: str, name: str, token: TokenSet, *, expected_version: int | None
    ) -> int:
        metadata: dict[str, JSONValue] = {
            "kind": "oauth2",
            "scopes": list[JSONValue](sorted(token.scopes)),
            "expires_at": token.expires_at,
            "needs_reauth": False,
        }
        try:
            return await self._store.put(
                tenant,
                name,
                {TOKEN_FIELD: json.dumps(token.reveal_for_storage())},
                metadata=metadata,
                actor=self._actor,
                expected_version=0 if expected_version is None else expected_version,
            )
        except Conflict:
            raise
        except CredentialMissing as exc:  # deleted meanwhile: the swap lost
            raise Conflict(f"credential {name!r} changed while refreshing", tenant=tenant) from exc

    async def mark_needs_reauth(self, tenant: str, name: str, reason: str) -> None:
        try:
            credential = await self._store.get(tenant, name, fresh=True)
        except CredentialMissing:
            return
        metadata = dict(credential.metadata)
        metadata["needs_reauth"] = True
        metadata["reauth_reason"] = reason[:200]
        try:
            await self._store.update_metadata(
                tenant,
                name,
                metadata,
                actor=self._actor,
                expected_version=credential.version,
            )
        except Conflict:
            return  # a newer token arrived meanwhile; it is no longer stale


class StateLockProvider:
    """A :class:`~connectors.auth.ports.LockProvider` on the shared state backend."""

    def __init__(self, state: StateBackend, *, clock: Clock = system_clock) -> None:
        self._state = state
        self._clock = clock

    async def acquire(self, key: str, *, owner: str, ttl: float) -> int | None:
        return await self._state.lock_acquire(key, owner=owner, ttl=ttl, now=self._clock.time())

    async def release(self, key: str, *, owner: str) -> bool:
        return await self._state.lock_release(key, owner=owner, now=self._clock.time())

"""The two things the token manager needs from the outside world, as Protocols.

The credential store (:mod:`connectors.secrets`) and the state backend (:mod:`connectors.state`)
satisfy these through small adapters wired by the ``Hub``; :mod:`connectors.auth.memory` has
in-memory versions for tests and single-process use. Keys are always per tenant, so one tenant's
token, lock or re-authorisation flag can never be reached through another tenant's name.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from connectors.auth.tokens import StoredToken, TokenSet

__all__ = ["LockProvider", "TokenStore"]


@runtime_checkable
class TokenStore(Protocol):
    """Persistence of one credential's token set per ``(tenant, credential name)``."""

    async def load(self, tenant: str, name: str) -> StoredToken | None:
        """The stored token set and its version, or ``None`` when nothing is stored."""
        ...

    async def save(
        self, tenant: str, name: str, token: TokenSet, *, expected_version: int | None
    ) -> int:
        """Store ``token`` if the stored version is ``expected_version``; return the new version.

        ``expected_version=None`` means "nothing is stored yet". Raises
        :class:`connectors.errors.Conflict` when the stored version differs (compare-and-swap).
        A successful save clears a needs-reauthorisation mark.
        """
        ...

    async def mark_needs_reauth(self, tenant: str, name: str, reason: str) -> None:
        """Record that a human must connect the credential again (shown in health)."""
        ...


@runtime_checkable
class LockProvider(Protocol):
    """Cross-process lease locks (Redis for many processes, in-memory for one)."""

    async def acquire(self, key: str, *, owner: str, ttl: float) -> int | None:
        """Take the lease for ``ttl`` seconds: a fencing token (increasing), or ``None`` if held.

        The same ``owner`` taking a lease it already holds renews it.
        """
        ...

    async def release(self, key: str, *, owner: str) -> bool:
        """Give the lease back; ``False`` if ``owner`` no longer held it (it had expired)."""
        ...

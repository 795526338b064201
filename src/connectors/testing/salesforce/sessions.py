"""Access tokens (sessions) and refresh tokens the emulator has issued.

An access token looks like Salesforce's: the 15-character org id, ``!``, then a long opaque
string. It is valid until the org's session timeout passes (measured on the injected clock) or
until it is revoked. Refresh tokens belong to a family; with rotation, using a rotated-out token
revokes the whole family and every session it produced, as Salesforce does.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field

from connectors.clock import Clock

__all__ = ["RefreshGrant", "Session", "SessionStore"]

_TOKEN_ALPHABET = string.ascii_letters + string.digits + "._"


def _opaque(length: int) -> str:
    return "".join(secrets.choice(_TOKEN_ALPHABET) for _ in range(length))


@dataclass
class Session:
    """One issued access token."""

    token: str
    user_id: str
    username: str
    consumer_key: str
    scopes: tuple[str, ...]
    issued_at: float  # clock.monotonic()
    family: str | None = None
    revoked: bool = False


@dataclass
class RefreshGrant:
    """One issued refresh token; ``rotated`` once a newer token of its family replaced it."""

    token: str
    user_id: str
    username: str
    consumer_key: str
    scopes: tuple[str, ...]
    family: str
    rotated: bool = False
    revoked: bool = False
    uses: int = field(default=0)


class SessionStore:
    """Issues, validates, expires and revokes tokens."""

    def __init__(self, org_id: str, clock: Clock, timeout: float) -> None:
        self.org_id = org_id
        self.clock = clock
        self.timeout = timeout
        self.sessions: dict[str, Session] = {}
        self.refresh_tokens: dict[str, RefreshGrant] = {}

    def issue(
        self,
        *,
        user_id: str,
        username: str,
        consumer_key: str,
        scopes: tuple[str, ...],
        family: str | None = None,
    ) -> Session:
        """A new access token for ``username`` through ``consumer_key``."""
        token = f"{self.org_id}!AQ{_opaque(94)}"
        session = Session(
            token, user_id, username, consumer_key, scopes, self.clock.monotonic(), family
        )
        self.sessions[token] = session
        return session

    def validate(self, token: str) -> Session | None:
        """The live session for ``token``, or ``None`` if unknown, expired or revoked."""
        session = self.sessions.get(token)
        if session is None or session.revoked:
            return None
        if self.clock.monotonic() - session.issued_at >= self.timeout:
            return None
        return session

    def expire_all(self) -> int:
        """Revoke every access token (refresh tokens stay valid); returns how many."""
        count = 0
        for session in self.sessions.values():
            if not session.revoked:
                session.revoked = True
                count += 1
        return count

    def issue_refresh(
        self,
        *,
        user_id: str,
        username: str,
        consumer_key: str,
        scopes: tuple[str, ...],
        family: str | None = None,
    ) -> RefreshGrant:
        """A new refresh token (a new family unless ``family`` is given)."""
        token = f"5Aep861{_opaque(80)}"
        grant = RefreshGrant(token, user_id, username, consumer_key, scopes, family or _opaque(16))
        self.refresh_tokens[token] = grant
        return grant

    def revoke_family(self, family: str) -> None:
        """Revoke every refresh token and access token of ``family``."""
        for grant in self.refresh_tokens.values():
            if grant.family == family:
                grant.revoked = True
        for session in self.sessions.values():
            if session.family == family:
                session.revoked = True

    def revoke(self, token: str) -> bool:
        """Revoke an access token or a refresh token (and its family); ``False`` if unknown."""
        if token in self.sessions:
            self.sessions[token].revoked = True
            return True
        grant = self.refresh_tokens.get(token)
        if grant is None:
            return False
        self.revoke_family(grant.family)
        return True

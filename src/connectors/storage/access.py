"""Access-control tables: role grants, teams, team members and API tokens.

Everything is scoped by tenant: a grant, a team or a token in one tenant says nothing about any
other. Timestamps are Unix seconds (``float``) from the injected clock. API tokens keep only the
SHA-256 of their secret part (``secret_hash``); the plaintext is shown once, at creation.
"""

from __future__ import annotations

from sqlalchemy import Float, ForeignKeyConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from connectors.storage.db import Base

__all__ = ["ApiTokenRow", "RoleGrantRow", "TeamMemberRow", "TeamRow"]


class RoleGrantRow(Base):
    """A role granted directly to an actor in a tenant."""

    __tablename__ = "access_role_grants"

    tenant: Mapped[str] = mapped_column(String(200), primary_key=True)
    actor: Mapped[str] = mapped_column(String(200), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    granted_by: Mapped[str | None] = mapped_column(String(200))
    granted_at: Mapped[float] = mapped_column(Float)


class TeamRow(Base):
    """A named group of actors within a tenant; every member holds at least ``role``."""

    __tablename__ = "access_teams"

    tenant: Mapped[str] = mapped_column(String(200), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[float] = mapped_column(Float)


class TeamMemberRow(Base):
    """Membership of one actor in one team (removed with the team)."""

    __tablename__ = "access_team_members"

    tenant: Mapped[str] = mapped_column(String(200), primary_key=True)
    team: Mapped[str] = mapped_column(String(100), primary_key=True)
    actor: Mapped[str] = mapped_column(String(200), primary_key=True)
    added_at: Mapped[float] = mapped_column(Float)

    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant", "team"],
            ["access_teams.tenant", "access_teams.name"],
            ondelete="CASCADE",
        ),
        Index("ix_access_team_members_tenant_actor", "tenant", "actor"),
    )


class ApiTokenRow(Base):
    """An API token for the server. ``id`` is the public lookup key; the secret is hashed."""

    __tablename__ = "access_api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(200), index=True)
    role: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    secret_hash: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float | None] = mapped_column(Float)
    revoked_at: Mapped[float | None] = mapped_column(Float)
    last_used_at: Mapped[float | None] = mapped_column(Float)

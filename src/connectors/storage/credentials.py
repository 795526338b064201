"""Tables of the encrypted credential store (see :mod:`connectors.secrets.store`).

Nothing here is clear text but names and non-secret metadata: ``credentials.ciphertext`` is
AES-256-GCM under the tenant's data key, and ``credential_tenant_keys.wrapped_key`` is that data
key under a master key named by ``kid``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, Boolean, DateTime, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from connectors.storage.db import Base

__all__ = ["CredentialRow", "TenantKeyRow", "as_utc"]


def as_utc(value: datetime) -> datetime:
    """A timestamp read back from the database as an aware UTC datetime (SQLite drops tzinfo)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class TenantKeyRow(Base):
    """A tenant's data key, wrapped (AES-GCM, AAD = tenant + kid) by master key ``kid``.

    ``generation`` allows a later data-key rotation; today every tenant has generation 1.
    """

    __tablename__ = "credential_tenant_keys"

    tenant: Mapped[str] = mapped_column(String(200), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, primary_key=True, default=1)
    kid: Mapped[str] = mapped_column(String(64))
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    rewrapped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class CredentialRow(Base):
    """One credential of one tenant: encrypted fields, clear metadata, version and tombstone.

    A deletion keeps the row as a tombstone (``deleted``, no ciphertext) so that versions keep
    increasing when the name is stored again, and compare-and-swap stays meaningful.
    """

    __tablename__ = "credentials"
    __table_args__ = (UniqueConstraint("tenant", "name", name="uq_credentials_tenant_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tenant: Mapped[str] = mapped_column(String(200), index=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    key_generation: Mapped[int] = mapped_column(Integer, default=1)
    nonce: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    #: The names of the secret fields (not their values), so listing needs no decryption.
    field_names: Mapped[list[str]] = mapped_column(JSON, default=list)
    meta: Mapped[dict[str, object]] = mapped_column("metadata", JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_by: Mapped[str] = mapped_column(String(200))
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)

"""The encrypted per-tenant credential store.

A credential is a set of named secret fields (``client_secret``, ``refresh_token``...) plus clear,
non-secret metadata (``scopes``, ``expires_at``, ``needs_reauth``...), stored under a name in one
tenant's namespace. Every operation takes the tenant explicitly and every query filters on it; the
ciphertext's associated data binds it to tenant, name and version (see
:mod:`connectors.secrets.crypto`), so even a row moved by hand in the database does not decrypt
elsewhere.

Writes are versioned: each ``put``, ``update_metadata`` and ``delete`` makes a new version, and an
``expected_version`` turns the write into a compare-and-swap (this is how rotated OAuth refresh
tokens are saved before use). A deletion leaves a tombstone so versions never go back.

Reads are cached, decrypted, for ``cache_ttl`` seconds per ``(tenant, name)`` and the cached entry
remembers its version. A write through this store invalidates its entry at once; a write by
another process becomes visible within ``cache_ttl`` — pass ``fresh=True`` to read through (the
token manager does before a refresh, and a stale compare-and-swap fails with ``Conflict``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Final, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.clock import Clock, system_clock
from connectors.errors import ConfigurationError, Conflict, CredentialMissing
from connectors.secrets.credential import (
    ChangeAction,
    ChangeEvent,
    ChangeHook,
    Credential,
    CredentialInfo,
    JSONValue,
    check_actor,
    check_fields,
    check_metadata,
    check_name,
    check_tenant,
    conflict,
    freeze_json,
)
from connectors.secrets.crypto import DataKey, MasterKeyring, WrappedKey, credential_aad
from connectors.secrets.secret import Secret
from connectors.storage.credentials import CredentialRow, TenantKeyRow, as_utc
from connectors.storage.db import Database

__all__ = ["CredentialStore"]

_log = logging.getLogger("connectors.secrets.store")
_GENERATION: Final = 1
_FORMAT: Final = 1
_WRITE_ATTEMPTS: Final = 5


@dataclass(slots=True)
class _Cached:
    credential: Credential
    expires: float


@dataclass(slots=True)
class _Stats:
    """Cache counters (for tests and the benchmark)."""

    hits: int = 0
    misses: int = 0
    decryptions: int = 0


class CredentialStore:
    """Encrypted credentials per tenant, in SQL, with versions, tombstones and a read cache.

    ``on_change`` is awaited after every committed put, metadata update, delete and data-key
    re-wrap. Its exceptions propagate to the caller (the change itself is already committed), so
    that an audit sink failure is never silent.
    """

    def __init__(
        self,
        db: Database,
        keyring: MasterKeyring,
        *,
        clock: Clock = system_clock,
        cache_ttl: float = 60.0,
        cache_size: int = 10_000,
        on_change: ChangeHook | None = None,
    ) -> None:
        self._db = db
        self._keyring = keyring
        self._clock = clock
        self._cache_ttl = cache_ttl
        self._cache_size = cache_size
        self.on_change = on_change
        self._cache: dict[tuple[str, str], _Cached] = {}
        self._invalidations: dict[tuple[str, str], int] = {}
        self._data_keys: dict[str, DataKey] = {}
        # SQLite allows one writer; serialising our own writes avoids SQLITE_BUSY on upgrade.
        self._write_lock = asyncio.Lock() if db.is_sqlite else None
        self.stats = _Stats()

    def __repr__(self) -> str:
        return f"CredentialStore(db={self._db.url.split('://')[0]!r}, keyring={self._keyring!r})"

    @property
    def keyring(self) -> MasterKeyring:
        return self._keyring

    # --- reads ----------------------------------------------------------------------------------

    async def get(self, tenant: str, name: str, *, fresh: bool = False) -> Credential:
        """The credential ``name`` of ``tenant``; ``CredentialMissing`` if absent or deleted."""
        check_tenant(tenant)
        check_name(name)
        key = (tenant, name)
        if not fresh and self._cache_ttl > 0:
            hit = self._cache.get(key)
            if hit is not None and hit.expires > self._clock.monotonic():
                self.stats.hits += 1
                return hit.credential
        self.stats.misses += 1
        mark = self._invalidations.get(key, 0)
        async with self._db.session() as session:
            row = await _select_row(session, tenant, name)
            if row is None or row.deleted or row.ciphertext is None or row.nonce is None:
                raise CredentialMissing(name, tenant=tenant)
            data_key = await self._data_key(session, tenant)
        credential = self._decrypt(data_key, row)
        if self._cache_ttl > 0 and self._invalidations.get(key, 0) == mark:
            if len(self._cache) >= self._cache_size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = _Cached(credential, self._clock.monotonic() + self._cache_ttl)
        return credential

    async def get_field(
        self, tenant: str, name: str, field_name: str = "value", *, fresh: bool = False
    ) -> Secret:
        """One secret field of a credential (``CredentialMissing`` names ``name#field``)."""
        return (await self.get(tenant, name, fresh=fresh)).secret(field_name)

    async def list(self, tenant: str) -> list[CredentialInfo]:
        """The live credentials of ``tenant``, by name, without values."""
        check_tenant(tenant)
        async with self._db.session() as session:
            rows = (
                await session.scalars(
                    select(CredentialRow)
                    .where(CredentialRow.tenant == tenant, CredentialRow.deleted.is_(False))
                    .order_by(CredentialRow.name)
                )
            ).all()
        return [
            CredentialInfo(
                tenant=row.tenant,
                name=row.name,
                version=row.version,
                field_names=tuple(row.field_names),
                metadata=MappingProxyType(cast(dict[str, JSONValue], freeze_json(row.meta))),
                created_at=as_utc(row.created_at),
                updated_at=as_utc(row.updated_at),
                updated_by=row.updated_by,
            )
            for row in rows
        ]

    # --- writes ---------------------------------------------------------------------------------

    async def put(
        self,
        tenant: str,
        name: str,
        fields: Mapping[str, str | Secret],
        *,
        metadata: Mapping[str, JSONValue] | None = None,
        actor: str,
        expected_version: int | None = None,
    ) -> int:
        """Store the credential as a new version and return it.

        With ``expected_version`` this is a compare-and-swap: ``Conflict`` unless the live
        version equals it (``0``: the credential must not exist, a tombstone counts as absent).
        """
        check_tenant(tenant)
        check_name(name)
        check_actor(actor)
        clear = check_fields(fields)
        meta = check_metadata(metadata)
        data_key = await self._ensure_data_key(tenant)

        async def write(session: AsyncSession, row: CredentialRow | None, now: datetime) -> int:
            live = 0 if row is None or row.deleted else row.version
            if expected_version is not None and expected_version != live:
                raise conflict(tenant, name, expected_version, live)
            version = 1 if row is None else row.version + 1
            nonce, ciphertext = _encrypt(data_key, tenant, name, version, clear)
            values = {
                "version": version,
                "key_generation": _GENERATION,
                "nonce": nonce,
                "ciphertext": ciphertext,
                "field_names": sorted(clear),
                "meta": meta,
                "updated_at": now,
                "updated_by": actor,
                "deleted": False,
            }
            if row is None:
                session.add(CredentialRow(tenant=tenant, name=name, created_at=now, **values))
                await session.flush()
            else:
                await _update_if_version(session, row, values)
            return version

        version = await self._write(tenant, name, write, cas=expected_version is not None)
        await self._emit(tenant, name, version, "put", actor)
        return version

    async def update_metadata(
        self,
        tenant: str,
        name: str,
        metadata: Mapping[str, JSONValue],
        *,
        actor: str,
        expected_version: int,
    ) -> int:
        """Replace the metadata of a live credential (compare-and-swap); returns the new version.

        The fields are re-encrypted under the new version, because the version is part of the
        ciphertext's associated data.
        """
        check_tenant(tenant)
        check_name(name)
        check_actor(actor)
        meta = check_metadata(metadata)

        async def write(session: AsyncSession, row: CredentialRow | None, now: datetime) -> int:
            if row is None or row.deleted:
                raise CredentialMissing(name, tenant=tenant)
            if row.version != expected_version:
                raise conflict(tenant, name, expected_version, row.version)
            data_key = await self._data_key(session, tenant)
            clear = {k: v.reveal() for k, v in self._decrypt(data_key, row).fields.items()}
            version = row.version + 1
            nonce, ciphertext = _encrypt(data_key, tenant, name, version, clear)
            await _update_if_version(
                session,
                row,
                {
                    "version": version,
                    "nonce": nonce,
                    "ciphertext": ciphertext,
                    "meta": meta,
                    "updated_at": now,
                    "updated_by": actor,
                },
            )
            return version

        version = await self._write(tenant, name, write, cas=True)
        await self._emit(tenant, name, version, "update_metadata", actor)
        return version

    async def delete(
        self, tenant: str, name: str, *, actor: str, expected_version: int | None = None
    ) -> int:
        """Tombstone the credential: values and metadata are erased, the version goes up.

        ``CredentialMissing`` if it does not exist (or is already deleted).
        """
        check_tenant(tenant)
        check_name(name)
        check_actor(actor)

        async def write(session: AsyncSession, row: CredentialRow | None, now: datetime) -> int:
            if row is None or row.deleted:
                raise CredentialMissing(name, tenant=tenant)
            if expected_version is not None and row.version != expected_version:
                raise conflict(tenant, name, expected_version, row.version)
            version = row.version + 1
            await _update_if_version(
                session,
                row,
                {
                    "version": version,
                    "nonce": None,
                    "ciphertext": None,
                    "field_names": [],
                    "meta": {},
                    "updated_at": now,
                    "updated_by": actor,
                    "deleted": True,
                },
            )
            return version

        version = await self._write(tenant, name, write, cas=expected_version is not None)
        await self._emit(tenant, name, version, "delete", actor)
        return version

    # --- master keys ----------------------------------------------------------------------------

    async def rotate_master_key(self, *, actor: str = "system") -> int:
        """Re-wrap every tenant data key not yet under the current master key; returns the count.

        Credentials are not re-encrypted. Each tenant is re-wrapped in its own short
        transaction and compare-and-swapped on the old key id, so readers never wait and a
        concurrent rotation does no harm. Old master keys stay usable until removed from
        ``CONNECTOR_MASTER_KEYS``; :meth:`master_key_usage` tells when none is needed any more.
        """
        current = self._keyring.current_kid
        async with self._db.session() as session:
            rows = (
                await session.execute(
                    select(
                        TenantKeyRow.tenant,
                        TenantKeyRow.generation,
                        TenantKeyRow.kid,
                        TenantKeyRow.wrapped_key,
                    ).where(TenantKeyRow.kid != current)
                )
            ).all()
        rewrapped = 0
        for tenant, generation, kid, blob in rows:
            new = self._keyring.rewrap(tenant, WrappedKey(kid, blob))
            async with self._locked(), self._db.session() as session:
                result = await session.execute(
                    update(TenantKeyRow)
                    .where(
                        TenantKeyRow.tenant == tenant,
                        TenantKeyRow.generation == generation,
                        TenantKeyRow.kid == kid,
                    )
                    .values(kid=new.kid, wrapped_key=new.blob, rewrapped_at=self._now())
                )
            if cast(CursorResult[tuple[()]], result).rowcount == 1:
                rewrapped += 1
                _log.info(
                    "credential data key re-wrapped",
                    extra={"tenant": tenant, "from_kid": kid, "to_kid": new.kid},
                )
                await self._emit(tenant, None, None, "rotate_master_key", actor, kid=new.kid)
        return rewrapped

    async def master_key_usage(self) -> dict[str, int]:
        """How many tenant data keys each master key id wraps (a key at 0 can be removed)."""
        async with self._db.session() as session:
            rows = (await session.execute(select(TenantKeyRow.kid))).scalars().all()
        usage = dict.fromkeys(self._keyring.kids, 0)
        for kid in rows:
            usage[kid] = usage.get(kid, 0) + 1
        return usage

    def clear_cache(self) -> None:
        """Forget cached credentials and unwrapped data keys (tests, and after a key change)."""
        for key in self._cache:
            self._invalidations[key] = self._invalidations.get(key, 0) + 1
        self._cache.clear()
        self._data_keys.clear()

    # --- internals ------------------------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock.time(), UTC)

    def _locked(self) -> asyncio.Lock | _NoLock:
        return self._write_lock if self._write_lock is not None else _NoLock()

    def _invalidate(self, tenant: str, name: str) -> None:
        key = (tenant, name)
        self._invalidations[key] = self._invalidations.get(key, 0) + 1
        self._cache.pop(key, None)

    async def _write(
        self,
        tenant: str,
        name: str,
        write: Callable[[AsyncSession, CredentialRow | None, datetime], Awaitable[int]],
        *,
        cas: bool,
    ) -> int:
        """Run ``write`` in a transaction, retrying lost races unless it is a compare-and-swap."""
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                async with self._locked(), self._db.session() as session:
                    row = await _select_row(session, tenant, name)
                    version = await write(session, row, self._now())
            except (IntegrityError, _LostRace, OperationalError) as exc:
                self._invalidate(tenant, name)
                if isinstance(exc, OperationalError) and not _is_busy(exc):
                    raise
                if cas or attempt == _WRITE_ATTEMPTS - 1:
                    raise Conflict(
                        f"credential {name!r} was changed concurrently",
                        tenant=tenant,
                        hint="read it again and retry",
                    ) from None
                await self._clock.sleep(0.01 * (attempt + 1))
                continue
            except BaseException:
                self._invalidate(tenant, name)
                raise
            self._invalidate(tenant, name)
            _log.debug(
                "credential written", extra={"tenant": tenant, "credential": name, "v": version}
            )
            return version
        raise AssertionError("unreachable")  # pragma: no cover

    async def _ensure_data_key(self, tenant: str) -> DataKey:
        """The tenant's data key, created (random, wrapped, committed) on first use."""
        cached = self._data_keys.get(tenant)
        if cached is not None:
            return cached
        async with self._db.session() as session:
            existing = await self._load_data_key(session, tenant)
        if existing is not None:
            return existing
        raw = self._keyring.new_data_key()
        wrapped = self._keyring.wrap(tenant, raw)
        try:
            async with self._locked(), self._db.session() as session:
                session.add(
                    TenantKeyRow(
                        tenant=tenant,
                        generation=_GENERATION,
                        kid=wrapped.kid,
                        wrapped_key=wrapped.blob,
                        created_at=self._now(),
                    )
                )
        except IntegrityError:
            # Another writer created it first: use theirs.
            async with self._db.session() as session:
                theirs = await self._data_key(session, tenant)
            return theirs
        data_key = DataKey(tenant, raw)
        self._data_keys[tenant] = data_key
        return data_key

    async def _data_key(self, session: AsyncSession, tenant: str) -> DataKey:
        data_key = await self._load_data_key(session, tenant)
        if data_key is None:
            raise ConfigurationError(
                f"the data key of tenant {tenant!r} is missing while its credentials exist",
                tenant=tenant,
                hint="restore the credential_tenant_keys table from a backup",
            )
        return data_key

    async def _load_data_key(self, session: AsyncSession, tenant: str) -> DataKey | None:
        cached = self._data_keys.get(tenant)
        if cached is not None:
            return cached
        row = await session.get(TenantKeyRow, (tenant, _GENERATION))
        if row is None:
            return None
        data_key = self._keyring.unwrap(tenant, WrappedKey(row.kid, row.wrapped_key))
        self._data_keys[tenant] = data_key
        return data_key

    def _decrypt(self, data_key: DataKey, row: CredentialRow) -> Credential:
        assert row.nonce is not None
        assert row.ciphertext is not None
        plaintext = data_key.decrypt(
            row.nonce, row.ciphertext, credential_aad(row.tenant, row.name, row.version)
        )
        self.stats.decryptions += 1
        document = json.loads(plaintext)
        fields = {
            k: Secret(v, name=f"{row.name}#{k}") for k, v in sorted(document["fields"].items())
        }
        return Credential(
            tenant=row.tenant,
            name=row.name,
            version=row.version,
            fields=MappingProxyType(fields),
            metadata=MappingProxyType(cast(dict[str, JSONValue], freeze_json(row.meta))),
            updated_at=as_utc(row.updated_at),
            updated_by=row.updated_by,
        )

    async def _emit(
        self,
        tenant: str,
        name: str | None,
        version: int | None,
        action: ChangeAction,
        actor: str,
        *,
        kid: str | None = None,
    ) -> None:
        if self.on_change is not None:
            await self.on_change(
                ChangeEvent(tenant, name, version, action, actor, self._now(), kid=kid)
            )


class _LostRace(Exception):
    """A conditional update matched no row: someone else wrote first."""


class _NoLock:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None


def _is_busy(exc: OperationalError) -> bool:
    text = str(exc.orig).lower()
    return "locked" in text or "busy" in text


async def _select_row(session: AsyncSession, tenant: str, name: str) -> CredentialRow | None:
    return cast(
        CredentialRow | None,
        await session.scalar(
            select(CredentialRow).where(CredentialRow.tenant == tenant, CredentialRow.name == name)
        ),
    )


async def _update_if_version(
    session: AsyncSession, row: CredentialRow, values: Mapping[str, object]
) -> None:
    """Update ``row`` only if its version is still the one we read; else :class:`_LostRace`."""
    result = await session.execute(
        update(CredentialRow)
        .where(CredentialRow.id == row.id, CredentialRow.version == row.version)
        .values({getattr(CredentialRow, key): value for key, value in values.items()})
        .execution_options(synchronize_session=False)
    )
    if cast(CursorResult[tuple[()]], result).rowcount != 1:
        raise _LostRace


def _encrypt(
    data_key: DataKey, tenant: str, name: str, version: int, clear: Mapping[str, str]
) -> tuple[bytes, bytes]:
    plaintext = json.dumps({"format": _FORMAT, "fields": dict(clear)}, sort_keys=True).encode()
    return data_key.encrypt(plaintext, credential_aad(tenant, name, version))

"""Envelope encryption for credentials at rest: AES-256-GCM, master keys wrapping tenant keys.

::

    CONNECTOR_MASTER_KEYS = "k2:<base64 32 bytes>,k1:<base64 32 bytes>"
        │ first key wraps, every key unwraps
        ▼
    tenant data key (random 32 bytes, one per tenant)   AAD = tenant + master kid
        │ encrypts
        ▼
    credential ciphertext                               AAD = tenant + name + version

Rotating the master key re-wraps each tenant's data key (a few bytes per tenant) and never
touches the credentials. The associated data binds every ciphertext to where it belongs: a data
key copied to another tenant, or a credential copied to another tenant, name or version, fails
the GCM tag check and raises :class:`~connectors.errors.ConfigurationError`.

Nonces are 96 random bits per encryption (NIST SP 800-38D §8.2.2 random construction); with one
data key per tenant the number of encryptions per key stays far below the 2**32 bound.
"""

from __future__ import annotations

import base64
import binascii
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from connectors.errors import ConfigurationError, CredentialIntegrityError, InvalidSetting

__all__ = [
    "DEV_KEY_FILE",
    "KEY_BYTES",
    "MASTER_KEYS_ENV",
    "NONCE_BYTES",
    "DataKey",
    "MasterKeyring",
    "WrappedKey",
    "credential_aad",
    "generate_master_key_entry",
]

#: The environment variable holding the master keys.
MASTER_KEYS_ENV: Final = "CONNECTOR_MASTER_KEYS"
#: The dev-mode key file under the data directory.
DEV_KEY_FILE: Final = "master.key"
KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12

_KEYGEN_COMMAND: Final = (
    "python -c 'import os,base64;print(\"k1:\"+base64.b64encode(os.urandom(32)).decode())'"
)
_KEYGEN_HINT: Final = (
    f"set {MASTER_KEYS_ENV} to comma-separated kid:base64 entries; create one with "
    f"{_KEYGEN_COMMAND} (put a new key first to rotate, keep old keys until rotation is done)"
)
_WRAP_DOMAIN: Final = b"connectors/data-key/v1"
_CRED_DOMAIN: Final = b"connectors/credential/v1"


def _aad(domain: bytes, *parts: str) -> bytes:
    """Length-prefixed associated data: no two different part lists encode the same bytes."""
    out = bytearray(domain)
    for part in parts:
        raw = part.encode()
        out += len(raw).to_bytes(4, "big") + raw
    return bytes(out)


def credential_aad(tenant: str, name: str, version: int) -> bytes:
    """The associated data of a credential ciphertext: binds it to tenant, name and version."""
    return _aad(_CRED_DOMAIN, tenant, name, str(version))


def generate_master_key_entry(kid: str = "k1") -> str:
    """A fresh ``kid:base64`` entry for :data:`MASTER_KEYS_ENV` (for the CLI and dev mode)."""
    return f"{kid}:{base64.b64encode(os.urandom(KEY_BYTES)).decode()}"


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A tenant data key encrypted under master key ``kid``: ``blob`` is nonce ‖ ciphertext."""

    kid: str
    blob: bytes = field(repr=False)


class DataKey:
    """A tenant's unwrapped data key. Its repr never shows the key."""

    __slots__ = ("_aead", "tenant")

    def __init__(self, tenant: str, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("a data key is 32 bytes")
        self.tenant = tenant
        self._aead = AESGCM(key)

    def __repr__(self) -> str:
        return f"DataKey(tenant={self.tenant!r})"

    def encrypt(self, plaintext: bytes, aad: bytes) -> tuple[bytes, bytes]:
        """``(nonce, ciphertext)`` of ``plaintext`` bound to ``aad``."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce, self._aead.encrypt(nonce, plaintext, aad)

    def decrypt(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        """The plaintext, or ``ConfigurationError`` if the tag, nonce or ``aad`` do not match."""
        try:
            return self._aead.decrypt(nonce, ciphertext, aad)
        except (InvalidTag, ValueError):
            raise CredentialIntegrityError(
                "credential ciphertext does not belong to this tenant/name",
                tenant=self.tenant,
                hint="the stored row was copied, edited or corrupted; store the credential again",
            ) from None


@dataclass(frozen=True, slots=True)
class _MasterKey:
    kid: str
    aead: AESGCM = field(repr=False)


class MasterKeyring:
    """The master keys: the first wraps new and re-wrapped data keys, every key unwraps.

    Build it with :meth:`from_env` (production), :meth:`parse`, or :meth:`dev` (a key file under
    the data directory, for laptops; the caller warns on every start).
    """

    __slots__ = ("_keys", "source")

    def __init__(self, keys: Sequence[tuple[str, bytes]], *, source: str = "keyring") -> None:
        if not keys:
            raise ConfigurationError(f"{source} holds no master key", hint=_KEYGEN_HINT)
        seen: dict[str, _MasterKey] = {}
        for kid, key in keys:
            if kid in seen:
                raise InvalidSetting(
                    source, "", f"distinct key ids (kid {kid!r} appears twice)", hint=_KEYGEN_HINT
                )
            if len(key) != KEY_BYTES:
                raise InvalidSetting(
                    source,
                    "",
                    f"{KEY_BYTES}-byte keys (kid {kid!r} has {len(key)} bytes)",
                    hint=_KEYGEN_HINT,
                )
            seen[kid] = _MasterKey(kid, AESGCM(key))
        self._keys: Mapping[str, _MasterKey] = seen
        self.source = source

    def __repr__(self) -> str:
        return f"MasterKeyring(kids={list(self.kids)!r}, source={self.source!r})"

    @property
    def current_kid(self) -> str:
        """The id of the key that wraps (the first one)."""
        return next(iter(self._keys))

    @property
    def kids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    # --- construction ---------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str, *, source: str = MASTER_KEYS_ENV) -> MasterKeyring:
        """Parse ``kid:base64,kid:base64``. Errors name ``source`` and the entry, never a key."""
        entries = [entry.strip() for entry in text.split(",")]
        if not any(entries):
            raise ConfigurationError(f"{source} is empty", hint=_KEYGEN_HINT)
        keys: list[tuple[str, bytes]] = []
        for position, entry in enumerate(entries, start=1):
            kid, colon, encoded = entry.partition(":")
            kid = kid.strip()
            if not colon or not kid or not encoded.strip():
                raise InvalidSetting(
                    source,
                    "",
                    f"comma-separated kid:base64 entries (entry {position} is not kid:base64)",
                    hint=_KEYGEN_HINT,
                )
            if not kid.replace("-", "").replace("_", "").replace(".", "").isalnum():
                raise InvalidSetting(
                    source,
                    "",
                    f"key ids of letters, digits, '-', '_', '.' (entry {position})",
                    hint=_KEYGEN_HINT,
                )
            try:
                key = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError):
                raise InvalidSetting(
                    source,
                    "",
                    f"base64 keys (entry {position}, kid {kid!r}, is not valid base64)",
                    hint=_KEYGEN_HINT,
                ) from None
            if len(key) != KEY_BYTES:
                raise InvalidSetting(
                    source,
                    "",
                    f"{KEY_BYTES}-byte keys (entry {position}, kid {kid!r}, decodes to "
                    f"{len(key)} bytes)",
                    hint=_KEYGEN_HINT,
                )
            keys.append((kid, key))
        return cls(keys, source=source)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> MasterKeyring:
        """The keyring from ``CONNECTOR_MASTER_KEYS``; a ``ConfigurationError`` if unset."""
        env = os.environ if environ is None else environ
        text = env.get(MASTER_KEYS_ENV, "")
        if not text.strip():
            raise ConfigurationError(
                f"{MASTER_KEYS_ENV} is not set: the credential store needs a master key",
                hint=_KEYGEN_HINT + "; or enable dev mode for a local key file",
            )
        return cls.parse(text)

    @classmethod
    def dev(cls, data_dir: Path) -> MasterKeyring:
        """The dev-mode keyring: ``<data_dir>/master.key`` (0600), created when missing.

        A key on the same disk as the database protects nothing against someone who can read
        both; it exists so that a laptop works without setup. The caller warns on every start.
        """
        data_dir.mkdir(parents=True, exist_ok=True)
        path = data_dir / DEV_KEY_FILE
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(generate_master_key_entry("dev") + "\n")
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise ConfigurationError(
                f"the dev master key file {path} is readable by other users",
                hint=f"run: chmod 600 {path}",
            )
        return cls.parse(path.read_text().strip(), source=str(path))

    @classmethod
    def load(
        cls, environ: Mapping[str, str] | None = None, *, dev_dir: Path | None = None
    ) -> MasterKeyring:
        """``CONNECTOR_MASTER_KEYS`` when set; else the dev key file when ``dev_dir`` is given."""
        env = os.environ if environ is None else environ
        if env.get(MASTER_KEYS_ENV, "").strip() or dev_dir is None:
            return cls.from_env(env)
        return cls.dev(dev_dir)

    # --- wrapping -------------------------------------------------------------------------------

    def wrap(self, tenant: str, data_key: bytes) -> WrappedKey:
        """Encrypt a tenant's data key under the current master key."""
        master = self._keys[self.current_kid]
        nonce = os.urandom(NONCE_BYTES)
        blob = nonce + master.aead.encrypt(nonce, data_key, _aad(_WRAP_DOMAIN, tenant, master.kid))
        return WrappedKey(master.kid, blob)

    def unwrap(self, tenant: str, wrapped: WrappedKey) -> DataKey:
        """Decrypt a tenant's data key; errors say which master key is missing or wrong."""
        return DataKey(tenant, self._unwrap_bytes(tenant, wrapped))

    def rewrap(self, tenant: str, wrapped: WrappedKey) -> WrappedKey:
        """The same data key, wrapped under the current master key."""
        return self.wrap(tenant, self._unwrap_bytes(tenant, wrapped))

    def _unwrap_bytes(self, tenant: str, wrapped: WrappedKey) -> bytes:
        master = self._keys.get(wrapped.kid)
        if master is None:
            raise ConfigurationError(
                f"the data key of tenant {tenant!r} is wrapped with master key {wrapped.kid!r}, "
                f"which is not in {self.source}",
                tenant=tenant,
                hint=f"add key {wrapped.kid!r} back to {self.source} (after the new one) and run "
                "the master key rotation before removing it",
            )
        nonce, body = wrapped.blob[:NONCE_BYTES], wrapped.blob[NONCE_BYTES:]
        try:
            return master.aead.decrypt(nonce, body, _aad(_WRAP_DOMAIN, tenant, master.kid))
        except (InvalidTag, ValueError):
            raise CredentialIntegrityError(
                f"the data key of tenant {tenant!r} does not decrypt with master key "
                f"{wrapped.kid!r}",
                tenant=tenant,
                hint="the key under this id changed, or the row belongs to another tenant",
            ) from None

    @staticmethod
    def new_data_key() -> bytes:
        """A fresh random tenant data key."""
        return os.urandom(KEY_BYTES)

"""Secret resolvers: turn a :class:`~connectors.secrets.refs.SecretRef` into a :class:`Secret`.

A resolver serves one scheme and always receives the *calling* tenant. The built-ins:

- ``env:`` reads the process environment (shared by every tenant: platform-level secrets);
- ``file:`` reads a file, one trailing newline stripped (Docker/Kubernetes secret files);
- ``secret:`` reads the calling tenant's credential store; the reference has no way to name a
  tenant, so another tenant's value cannot be asked for.

``vault:`` (:mod:`connectors.secrets.vault`) and ``aws-sm:`` (:mod:`connectors.secrets.aws`) need
configuration and are registered by the Hub. Third-party packages add schemes through the entry
point group ``connectors.secret_resolvers``: the entry point's name is the scheme and its object a
zero-argument callable (usually the class) returning the resolver. A plugin can never replace a
built-in scheme.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import logging
import os
import stat
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol, runtime_checkable

from connectors.clock import Clock, system_clock
from connectors.errors import ConfigurationError, ConnectorError, CredentialMissing
from connectors.secrets.refs import MalformedReference, SecretRef
from connectors.secrets.secret import Secret

__all__ = [
    "BUILTIN_SCHEMES",
    "ENTRY_POINT_GROUP",
    "CachingResolver",
    "CredentialReader",
    "EnvResolver",
    "FileResolver",
    "ResolverRegistry",
    "SecretResolver",
    "StoreResolver",
]

#: The entry point group third-party resolvers register in.
ENTRY_POINT_GROUP: Final = "connectors.secret_resolvers"
#: Schemes a plugin may not take over.
BUILTIN_SCHEMES: Final = frozenset({"env", "file", "secret", "vault", "aws-sm"})

_log = logging.getLogger("connectors.secrets.resolvers")


@runtime_checkable
class SecretResolver(Protocol):
    """Resolves references of one scheme for a tenant.

    Implementations raise :class:`~connectors.errors.CredentialMissing` (naming tenant and
    reference) when nothing is stored, other :class:`~connectors.errors.ConnectorError`
    subclasses for everything else, and never put a value in an error or a log line.
    """

    scheme: str

    async def resolve(self, ref: SecretRef, *, tenant: str) -> Secret:
        """The value ``ref`` names, as seen by ``tenant``."""
        ...


class CredentialReader(Protocol):
    """What the ``secret:`` resolver needs from the credential store."""

    async def get_field(self, tenant: str, name: str, field_name: str = "value") -> Secret: ...


def _missing(ref: SecretRef, tenant: str, hint: str | None = None) -> CredentialMissing:
    if hint is None:
        return CredentialMissing(ref.text, tenant=tenant)
    return CredentialMissing(ref.text, tenant=tenant, hint=hint)


class EnvResolver:
    """``${env:NAME}``: an environment variable. Unset or empty is missing, never ``""``."""

    scheme = "env"

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ

    async def resolve(self, ref: SecretRef, *, tenant: str) -> Secret:
        environ = os.environ if self._environ is None else self._environ
        value = environ.get(ref.path, "")
        if not value:
            raise _missing(ref, tenant, f"set the environment variable {ref.path}")
        return Secret(value, name=ref.text)


class FileResolver:
    """``${file:PATH}``: a file's content, one trailing newline stripped.

    Relative paths are taken from ``base_dir`` (the configuration file's directory) or the
    working directory. A file readable by other users still resolves, with a logged warning.
    """

    scheme = "file"

    def __init__(self, base_dir: Path | None = None) -> None:
        self._base_dir = base_dir

    async def resolve(self, ref: SecretRef, *, tenant: str) -> Secret:
        return await asyncio.to_thread(self._read, ref, tenant)

    def _read(self, ref: SecretRef, tenant: str) -> Secret:
        path = Path(ref.path).expanduser()
        if not path.is_absolute() and self._base_dir is not None:
            path = self._base_dir / path
        try:
            mode = path.stat().st_mode
            if not stat.S_ISREG(mode):
                raise _missing(ref, tenant, f"{path} is not a regular file")
            content = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise _missing(ref, tenant, f"create {path} or fix the path") from None
        except PermissionError:
            raise _missing(ref, tenant, f"the process may not read {path}") from None
        except UnicodeDecodeError:
            raise ConfigurationError(
                f"secret file {path} is not UTF-8 text", tenant=tenant, hint="store text"
            ) from None
        if mode & stat.S_IROTH:
            _log.warning(
                "secret file %s is readable by every user; chmod 600 it", path, extra={"path": path}
            )
        if content.endswith("\r\n"):
            content = content[:-2]
        elif content.endswith("\n"):
            content = content[:-1]
        if not content:
            raise _missing(ref, tenant, f"{path} is empty")
        return Secret(content, name=ref.text)


class StoreResolver:
    """``${secret:NAME}`` / ``${secret:NAME#FIELD}``: the calling tenant's credential store.

    The tenant is the caller's, passed by the framework; the reference cannot name another one.
    ``FIELD`` defaults to ``value``.
    """

    scheme = "secret"

    def __init__(self, store: CredentialReader) -> None:
        self._store = store

    async def resolve(self, ref: SecretRef, *, tenant: str) -> Secret:
        try:
            return await self._store.get_field(tenant, ref.path, ref.field or "value")
        except CredentialMissing as exc:
            raise _missing(ref, tenant, exc.hint) from None


@dataclass(slots=True)
class _CacheEntry:
    secret: Secret
    expires: float


class CachingResolver:
    """Wraps a resolver of a remote manager (Vault, AWS) with a per-tenant TTL cache.

    Remote managers bill and throttle per read; a definition resolved for every connection
    would call them constantly. Entries are keyed by ``(tenant, reference)``, so caching never
    shares a value across tenants. Misses are not cached.
    """

    def __init__(self, inner: SecretResolver, *, ttl: float, clock: Clock = system_clock) -> None:
        self.scheme = inner.scheme
        self._inner = inner
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[tuple[str, SecretRef], _CacheEntry] = {}

    async def resolve(self, ref: SecretRef, *, tenant: str) -> Secret:
        key = (tenant, ref)
        entry = self._entries.get(key)
        now = self._clock.monotonic()
        if entry is not None and entry.expires > now:
            return entry.secret
        secret = await self._inner.resolve(ref, tenant=tenant)
        self._entries[key] = _CacheEntry(secret, now + self._ttl)
        return secret

    def invalidate(self, tenant: str | None = None) -> None:
        """Drop cached values (of one tenant, or all)."""
        if tenant is None:
            self._entries.clear()
        else:
            for key in [k for k in self._entries if k[0] == tenant]:
                del self._entries[key]


class ResolverRegistry:
    """The resolvers by scheme, and the one entry point for resolving a reference."""

    def __init__(self, resolvers: Iterable[SecretResolver] = ()) -> None:
        self._resolvers: dict[str, SecretResolver] = {}
        for resolver in resolvers:
            self.register(resolver)

    @classmethod
    def with_builtins(
        cls,
        store: CredentialReader | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        base_dir: Path | None = None,
        discover: bool = True,
    ) -> ResolverRegistry:
        """``env:``, ``file:``, ``secret:`` (when a store is given) and installed plugins."""
        registry = cls([EnvResolver(environ), FileResolver(base_dir)])
        if store is not None:
            registry.register(StoreResolver(store))
        if discover:
            registry.discover()
        return registry

    @property
    def schemes(self) -> tuple[str, ...]:
        return tuple(sorted(self._resolvers))

    def register(self, resolver: SecretResolver, *, replace: bool = False) -> None:
        """Add a resolver for its scheme; ``replace`` allows swapping an existing one."""
        scheme = resolver.scheme
        if scheme in self._resolvers and not replace:
            raise ConfigurationError(
                f"a secret resolver for scheme {scheme!r} is already registered",
                hint="pass replace=True to swap it deliberately",
            )
        self._resolvers[scheme] = resolver

    def discover(self, group: str = ENTRY_POINT_GROUP) -> list[str]:
        """Load resolvers from installed packages' entry points; returns the schemes added.

        A plugin naming a built-in or already registered scheme is skipped with a warning; one
        that fails to load raises ``ConfigurationError`` naming the entry point.
        """
        added: list[str] = []
        for entry_point in importlib.metadata.entry_points(group=group):
            scheme = entry_point.name
            if scheme in BUILTIN_SCHEMES or scheme in self._resolvers:
                _log.warning(
                    "ignoring secret resolver plugin %s for scheme %r: already provided",
                    entry_point.value,
                    scheme,
                )
                continue
            try:
                factory: Callable[[], object] = entry_point.load()
                resolver = factory()
            except Exception as exc:
                raise ConfigurationError(
                    f"secret resolver plugin {entry_point.value!r} (scheme {scheme!r}) failed "
                    f"to load: {type(exc).__name__}",
                    hint="fix or uninstall the package that provides it",
                ) from exc
            if not isinstance(resolver, SecretResolver) or resolver.scheme != scheme:
                raise ConfigurationError(
                    f"secret resolver plugin {entry_point.value!r} does not provide a resolver "
                    f"for scheme {scheme!r}",
                    hint="the entry point must name a callable returning an object with "
                    "`scheme` equal to the entry point name and `async resolve(ref, *, tenant)`",
                )
            self._resolvers[scheme] = resolver
            added.append(scheme)
        return added

    def get(self, scheme: str) -> SecretResolver:
        """The resolver of ``scheme``, or a ``DefinitionError`` listing the known schemes."""
        try:
            return self._resolvers[scheme]
        except KeyError:
            raise MalformedReference(
                f"no secret resolver for scheme {scheme!r}; known schemes: "
                f"{', '.join(self.schemes) or '(none)'}",
                hint=f"install the plugin that provides {scheme!r} or fix the reference",
            ) from None

    def check(self, ref: SecretRef) -> None:
        """Raise ``DefinitionError`` unless ``ref`` can be resolved here (for config loading)."""
        if not ref.is_context:
            self.get(ref.scheme)

    async def resolve(self, ref: SecretRef, *, tenant: str) -> Secret:
        """Resolve a secret reference for ``tenant``.

        Context references (``${tenant.id}``) are not secrets: use :meth:`resolve_text`.
        """
        if not tenant:
            raise ValueError("resolving a secret needs the calling tenant")
        if ref.is_context:
            raise ValueError(f"{ref.text} is a context reference; use resolve_text")
        resolver = self.get(ref.scheme)
        try:
            secret = await resolver.resolve(ref, tenant=tenant)
        except ConnectorError as exc:
            exc.with_context(tenant=tenant)
            raise
        if not isinstance(secret, Secret):
            raise ConfigurationError(
                f"the resolver for {ref.scheme!r} returned {type(secret).__name__}, not a Secret",
                hint="secret resolvers must return connectors.secrets.Secret",
            )
        return secret

    async def resolve_text(self, ref: SecretRef, *, tenant: str) -> str | Secret:
        """Like :meth:`resolve`, but a context reference yields its plain value."""
        if ref.is_context:
            if (ref.scheme, ref.path) == ("tenant", "id"):
                return tenant
            raise ValueError(f"unknown context reference {ref.text}")  # pragma: no cover
        return await self.resolve(ref, tenant=tenant)

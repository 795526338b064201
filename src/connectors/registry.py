"""The adapter registry: built-in adapters, third-party adapters from entry points, and more.

Third-party packages register adapters under the entry-point group ``connectors.adapters``::

    [project.entry-points."connectors.adapters"]
    hubspot = "connectors_hubspot:HubSpotConnector"

Adapters are imported lazily, on first use, so ``import connectors`` stays cheap. An unknown name
fails with :class:`~connectors.errors.UnknownConnector`, listing the known names and the closest
matches.
"""

from __future__ import annotations

import difflib
import importlib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points

from connectors.base import Connector
from connectors.errors import ConfigurationError, UnknownConnector

__all__ = ["BUILTIN_ADAPTERS", "ENTRY_POINT_GROUP", "AdapterInfo", "AdapterRegistry"]

ENTRY_POINT_GROUP = "connectors.adapters"

#: Built-in adapters by name, as ``module:Class`` (imported on first use).
BUILTIN_ADAPTERS: dict[str, str] = {
    "salesforce": "connectors.adapters.salesforce:SalesforceConnector",
    "slack": "connectors.adapters.slack:SlackConnector",
    "email": "connectors.adapters.email:EmailConnector",
    "webhook": "connectors.adapters.webhook:WebhookConnector",
    "http": "connectors.adapters.http:HttpConnector",
}


@dataclass(frozen=True, slots=True)
class AdapterInfo:
    """What the registry knows about one adapter without importing more than needed."""

    name: str
    source: str  # "builtin" | "entry-point" | "registered"
    target: str  # "module:Class" or a description
    version: str | None = None
    description: str = ""


class AdapterRegistry:
    """Adapters by name. Thread-safe; resolution is lazy and cached."""

    def __init__(self, *, discover: bool = True, builtins: dict[str, str] | None = None) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[str, type[Connector]] = {}
        self._lazy: dict[str, tuple[str, Callable[[], type[Connector]]]] = {}
        self._targets: dict[str, tuple[str, str]] = {}
        for name, target in (BUILTIN_ADAPTERS if builtins is None else builtins).items():
            self._lazy[name] = ("builtin", _importer(target))
            self._targets[name] = ("builtin", target)
        if discover:
            self._discover(entry_points(group=ENTRY_POINT_GROUP))

    def _discover(self, eps: Iterable[EntryPoint]) -> None:
        for ep in eps:
            if ep.name in self._targets and self._targets[ep.name][0] == "builtin":
                continue  # a plugin cannot shadow a built-in adapter
            self._targets[ep.name] = ("entry-point", ep.value)
            self._lazy[ep.name] = ("entry-point", _entry_point_loader(ep))

    def register(self, adapter: type[Connector], *, name: str | None = None) -> None:
        """Register an adapter class directly (tests, applications, declarative adapters)."""
        if not (isinstance(adapter, type) and issubclass(adapter, Connector)):
            raise ConfigurationError(f"{adapter!r} is not a Connector subclass")
        key = name or adapter.name
        if not key:
            raise ConfigurationError(f"{adapter.__name__} has no adapter name", hint="set `name`")
        with self._lock:
            self._loaded[key] = adapter
            self._targets[key] = ("registered", f"{adapter.__module__}:{adapter.__qualname__}")

    def names(self) -> list[str]:
        """Every known adapter name, sorted."""
        return sorted(set(self._targets) | set(self._loaded))

    def __contains__(self, name: object) -> bool:
        return name in self._targets or name in self._loaded

    def get(self, name: str) -> type[Connector]:
        """The adapter class for ``name``; raises :class:`UnknownConnector` with suggestions."""
        adapter = self._loaded.get(name)
        if adapter is not None:
            return adapter
        with self._lock:
            adapter = self._loaded.get(name)
            if adapter is not None:
                return adapter
            lazy = self._lazy.get(name)
            if lazy is None:
                known = self.names()
                raise UnknownConnector(
                    name, known, difflib.get_close_matches(name, known, n=3, cutoff=0.6)
                )
            source, load = lazy
            try:
                adapter = load()
            except ConfigurationError:
                raise
            except Exception as exc:
                raise ConfigurationError(
                    f"adapter {name!r} ({source} {self._targets[name][1]}) failed to load: "
                    f"{type(exc).__name__}: {exc}",
                    connector=name,
                    hint="check that the package providing it is installed and importable",
                ) from exc
            if not (isinstance(adapter, type) and issubclass(adapter, Connector)):
                raise ConfigurationError(
                    f"adapter {name!r} ({self._targets[name][1]}) is not a Connector subclass",
                    connector=name,
                )
            self._loaded[name] = adapter
            return adapter

    def info(self) -> list[AdapterInfo]:
        """Name, source and version of every adapter (imports each one to read its version;
        an adapter that fails to import is listed with its error as the description)."""
        out: list[AdapterInfo] = []
        for name in self.names():
            source, target = self._targets.get(name, ("registered", "?"))
            try:
                adapter = self.get(name)
            except ConfigurationError as exc:
                out.append(AdapterInfo(name, source, target, None, f"unavailable: {exc.message}"))
                continue
            doc = (adapter.__doc__ or "").strip().splitlines()
            out.append(AdapterInfo(name, source, target, adapter.version, doc[0] if doc else ""))
        return out


def _importer(target: str) -> Callable[[], type[Connector]]:
    def load() -> type[Connector]:
        module_name, _, attr = target.partition(":")
        module = importlib.import_module(module_name)
        obj: type[Connector] = getattr(module, attr)
        return obj

    return load


def _entry_point_loader(ep: EntryPoint) -> Callable[[], type[Connector]]:
    def load() -> type[Connector]:
        obj: type[Connector] = ep.load()
        return obj

    return load

"""Rotators: the provider-side half of a rotation, one per provider (or connector type).

A :class:`Rotator` makes the provider issue a new secret while the old one keeps working
(``create``), revokes the old one after the grace window (``revoke``), and cancels a new secret
whose verification failed (``discard``). The engine does everything else: storing both values,
verifying, rolling back, auditing and scheduling.

Rotators are found by name in a :class:`RotatorRegistry`: built-ins, those registered in code,
and the entry-point group ``connectors.rotators`` (the entry point's name is the rotator name,
usually the connector type; its object is a zero-argument factory or class)::

    [project.entry-points."connectors.rotators"]
    acme = "acme_connectors.rotation:AcmeKeyRotator"
"""

from __future__ import annotations

import base64
import dataclasses
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Final, Literal, Protocol, runtime_checkable

import httpx2

from connectors.errors import ConfigurationError
from connectors.rotation.policy import RotationKind, RotationPolicy
from connectors.secrets.secret import Secret

__all__ = [
    "ENTRY_POINT_GROUP",
    "GeneratedSecretRotator",
    "RotationRequest",
    "Rotator",
    "RotatorRegistry",
]

#: The entry-point group rotators are discovered from.
ENTRY_POINT_GROUP: Final = "connectors.rotators"


@dataclass(frozen=True, slots=True)
class RotationRequest:
    """What a rotator is told: whose credential, which field, its current value and the rest.

    ``fields`` are every field of the credential before the rotation (a client secret's rotator
    needs the client id). ``settings`` are the connector's non-secret settings (base URLs) and
    ``transport`` the connector's transport (an emulator in tests; ``None`` = the network).
    """

    tenant: str
    credential: str
    field: str
    kind: RotationKind
    current: Secret
    fields: Mapping[str, Secret]
    settings: Mapping[str, object] = dataclasses.field(default_factory=dict)
    transport: httpx2.AsyncBaseTransport | None = None

    def client(self, base_url: str = "", *, timeout: float = 30.0) -> httpx2.AsyncClient:
        """An HTTP client for the provider's admin API (close it, e.g. ``async with``)."""
        return httpx2.AsyncClient(
            base_url=base_url, transport=self.transport, timeout=timeout, trust_env=False
        )


@runtime_checkable
class Rotator(Protocol):
    """The provider-side hooks of a rotation. Never log or raise with a secret value."""

    async def create(self, request: RotationRequest) -> Secret:
        """Have the provider issue a new secret; the current one must stay valid."""
        ...

    async def revoke(self, request: RotationRequest, old: Secret) -> None:
        """The grace window is over: make ``old`` invalid at the provider."""
        ...

    async def discard(self, request: RotationRequest, new: Secret) -> None:
        """Verification failed: cancel ``new`` at the provider (the old one stays)."""
        ...


class GeneratedSecretRotator:
    """Secrets we generate ourselves (webhook signing secrets): no provider call at all.

    ``style``: ``whsec`` (Standard Webhooks: ``whsec_`` + base64 of ``size`` random bytes) or
    ``token`` (URL-safe random text).
    """

    def __init__(self, style: Literal["whsec", "token"] = "whsec", size: int = 32) -> None:
        if size < 16:
            raise ConfigurationError("a generated secret needs at least 16 random bytes")
        self.style = style
        self.size = size

    async def create(self, request: RotationRequest) -> Secret:
        if self.style == "whsec":
            value = "whsec_" + base64.b64encode(os.urandom(self.size)).decode("ascii")
        else:
            value = secrets.token_urlsafe(self.size)
        return Secret(value, name=f"{request.credential}#{request.field}")

    async def revoke(self, request: RotationRequest, old: Secret) -> None:
        """Nothing to revoke: dropping the old value from the store is the revocation."""

    async def discard(self, request: RotationRequest, new: Secret) -> None:
        """Nothing to cancel."""


RotatorFactory = Callable[[], Rotator]


class RotatorRegistry:
    """Rotators by name: built-ins, code registrations, then the ``connectors.rotators`` group."""

    def __init__(self, *, discover: bool = True) -> None:
        self._factories: dict[str, RotatorFactory] = {
            "generated": GeneratedSecretRotator,
            "generated-token": lambda: GeneratedSecretRotator("token"),
            "salesforce-emulator": _salesforce_emulator,
            "slack-emulator": _slack_emulator,
            "slack-emulator-signing": _slack_emulator_signing,
        }
        self._instances: dict[str, Rotator] = {}
        self._discover = discover
        self._discovered = False

    def register(self, name: str, rotator: Rotator | RotatorFactory) -> None:
        """Use ``rotator`` (an instance, or a zero-argument factory) under ``name``."""
        if not name:
            raise ConfigurationError("a rotator needs a non-empty name")
        if isinstance(rotator, Rotator):
            self._instances[name] = rotator
        else:
            self._factories[name] = rotator
            self._instances.pop(name, None)

    def _load_entry_points(self) -> None:
        if self._discovered or not self._discover:
            return
        self._discovered = True
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name not in self._factories and ep.name not in self._instances:
                loaded = ep.load()
                self._factories[ep.name] = loaded

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(set(self._factories) | set(self._instances))

    def get(self, name: str) -> Rotator:
        """The rotator ``name``; :class:`~connectors.errors.ConfigurationError` if unknown."""
        found = self._instances.get(name)
        if found is not None:
            return found
        self._load_entry_points()
        factory = self._factories.get(name)
        if factory is None:
            raise ConfigurationError(
                f"no rotator named {name!r} (known: {', '.join(self.names()) or 'none'})",
                hint=f"register one in code or through the {ENTRY_POINT_GROUP!r} entry points",
            )
        made = factory()
        if not isinstance(made, Rotator):
            raise ConfigurationError(f"rotator {name!r} does not implement create/revoke/discard")
        self._instances[name] = made
        return made

    def for_policy(self, policy: RotationPolicy, connector_type: str | None) -> Rotator:
        """The policy's rotator: its ``rotator`` name, else ``generated`` for webhook secrets,
        else the connector type's."""
        if policy.rotator is not None:
            return self.get(policy.rotator)
        if policy.kind == "webhook_secret":
            return self.get("generated")
        if connector_type is None:
            raise ConfigurationError(
                f"rotating {policy.credential!r} ({policy.kind}) needs a provider rotator",
                hint="name one in the policy (rotator=...) or set the policy's connector",
            )
        return self.get(connector_type)


def _salesforce_emulator() -> Rotator:
    from connectors.rotation.emulated import SalesforceEmulatorRotator

    return SalesforceEmulatorRotator()


def _slack_emulator() -> Rotator:
    from connectors.rotation.slack_emulated import SlackEmulatorRotator

    return SlackEmulatorRotator()


def _slack_emulator_signing() -> Rotator:
    from connectors.rotation.slack_emulated import SlackEmulatorRotator

    return SlackEmulatorRotator("signing_secret")

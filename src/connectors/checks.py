"""Compatibility checks of a connector definition for a tenant, before anything runs.

``connectors check`` and every connect run :func:`check_definition`: the adapter version against
a pinned range, a retired provider API version, a definition whose ``schema_version`` needs
migration, credentials the tenant lacks, and scopes the stored credential was not granted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from connectors.config.semver import Version
from connectors.secrets.refs import secret_refs

if TYPE_CHECKING:
    from connectors.config.definition import ConnectorDefinition
    from connectors.hub import Hub

__all__ = ["Problem", "ProblemCode", "check_definition", "checked_resolver", "raise_for"]

ProblemCode = Literal[
    "unknown_adapter",
    "adapter_version",
    "provider_api_version",
    "schema_migration",
    "credential_missing",
    "scopes_not_granted",
]


@dataclass(frozen=True, slots=True)
class Problem:
    """One compatibility problem of a definition (never a secret value)."""

    connector: str
    code: ProblemCode
    message: str
    hint: str
    severity: Literal["error", "warning"] = "error"
    #: What the problem is about (the reference of a missing credential), for typed errors.
    subject: str | None = None
    #: For ``scopes_not_granted``: the scopes needed and those the credential holds.
    needed: tuple[str, ...] = ()
    provided: tuple[str, ...] = ()

    def __str__(self) -> str:
        return f"{self.connector}: {self.message} Hint: {self.hint}"


def _operation_scopes(
    adapter: type[object], definition: ConnectorDefinition
) -> dict[str, tuple[str, ...]]:
    if definition.api is not None:
        return {n: tuple(op.scopes) for n, op in definition.api.operations.items()}
    operations = getattr(adapter, "operations", None)
    if operations is None:
        return {}
    return {n: tuple(info.scopes) for n, info in operations().items()}


def _oauth_credential(name: str, definition: ConnectorDefinition) -> str | None:
    settings = definition.settings
    credential = settings.get("oauth_credential")
    if isinstance(credential, str) and credential:
        return credential
    auth = definition.auth
    if auth is not None and auth.kind == "oauth2_client_credentials":
        return auth.credential or f"{name}-oauth"
    return None


async def check_definition(
    hub: Hub, name: str, definition: ConnectorDefinition, tenant: str | None
) -> list[Problem]:
    """Every compatibility problem of ``definition`` (see the module docstring).

    Without a ``tenant`` only the tenant-independent checks run. Never connects to a provider.
    """
    from connectors.config.definition import SCHEMA_VERSION
    from connectors.errors import CredentialMissing, UnknownConnector

    problems: list[Problem] = []
    try:
        adapter = hub.registry.get(definition.type)
    except UnknownConnector as exc:
        return [Problem(name, "unknown_adapter", exc.message, exc.hint or "install the adapter")]
    pin = definition.adapter_range
    if pin is not None and not pin.contains(Version.parse(adapter.version)):
        problems.append(
            Problem(
                name,
                "adapter_version",
                f"the {definition.type} adapter is version {adapter.version}, outside the "
                f"pinned range {pin.text}",
                f"install a {definition.type} adapter matching {pin.text}, or change the pin",
            )
        )
    api_version = definition.settings.get("api_version")
    supported = adapter.provider_api_versions
    if isinstance(api_version, str) and supported and api_version not in supported:
        problems.append(
            Problem(
                name,
                "provider_api_version",
                f"provider API version {api_version} is retired or unknown to the "
                f"{definition.type} adapter {adapter.version}",
                f"use one of {', '.join(supported)} in settings.api_version",
            )
        )
    if definition.schema_version < SCHEMA_VERSION:
        problems.append(
            Problem(
                name,
                "schema_migration",
                f"the definition is written in schema_version {definition.schema_version} "
                f"(current: {SCHEMA_VERSION}); it is migrated in memory on every load",
                "run `connectors validate --upgrade FILE` to rewrite it",
                "warning",
            )
        )
    if tenant is None:
        return problems
    for credential, field_name, text in secret_refs(definition.settings):
        try:
            # The store is touched only when a definition references it: a Hub whose
            # connectors use no stored credential needs no master key.
            stored = await hub.services.credentials.get(tenant, credential)
        except CredentialMissing:
            stored = None
        if stored is None or (field_name is not None and field_name not in stored.fields):
            problems.append(
                Problem(
                    name,
                    "credential_missing",
                    f"credential {text!r} is not set for tenant {tenant!r}",
                    f"store it: `connectors credentials set --tenant {tenant} {credential}`",
                    subject=text,
                )
            )
    oauth = _oauth_credential(name, definition)
    if oauth is not None:
        granted = await hub.granted_scopes(tenant, oauth)()
        if granted is not None:
            lacking: dict[str, list[str]] = {}
            for op, scopes in _operation_scopes(adapter, definition).items():
                for scope in scopes:
                    if scope not in granted:
                        lacking.setdefault(scope, []).append(op)
            if lacking:
                listing = "; ".join(
                    f"{s} (needed by {', '.join(ops)})" for s, ops in lacking.items()
                )
                problems.append(
                    Problem(
                        name,
                        "scopes_not_granted",
                        f"credential {oauth!r} of tenant {tenant!r} lacks scope(s) {listing}",
                        "re-connect the credential with these scopes",
                        needed=tuple(sorted({*lacking, *granted})),
                        provided=tuple(sorted(granted)),
                    )
                )
    return problems


def raise_for(problems: list[Problem], tenant: str | None = None) -> None:
    """Raise the typed error of the first ``error``-severity problem (warnings are ignored)."""
    from connectors.errors import CredentialMissing, IncompatibleVersion, ScopeDenied

    for problem in problems:
        if problem.severity != "error":
            continue
        if problem.code == "credential_missing":
            error: Exception = CredentialMissing(
                problem.subject or problem.connector, tenant=tenant, hint=problem.hint
            )
        elif problem.code == "scopes_not_granted":
            error = ScopeDenied(
                problem.message,
                needed=problem.needed,
                provided=problem.provided,
                hint=problem.hint,
                tenant=tenant,
            )
        else:
            error = IncompatibleVersion(problem.message, hint=problem.hint, tenant=tenant)
        if hasattr(error, "with_context"):
            error.with_context(connector=problem.connector)
        raise error


SettingsResolver = Callable[[Mapping[str, object]], Awaitable[Mapping[str, object]]]


def checked_resolver(
    hub: Hub,
    name: str,
    definition: ConnectorDefinition,
    tenant: str,
    inner: SettingsResolver | None,
) -> SettingsResolver:
    """Wrap a connector's settings resolver so that connecting runs :func:`check_definition`
    first and fails with the first problem's typed error (the Hub installs it per instance)."""

    async def resolve(settings: Mapping[str, object]) -> Mapping[str, object]:
        raise_for(await check_definition(hub, name, definition, tenant), tenant)
        return settings if inner is None else await inner(settings)

    return resolve

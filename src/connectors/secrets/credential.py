"""Credentials as values: what the store hands out, lists and announces, and input checks.

:class:`Credential` holds decrypted fields as :class:`~connectors.secrets.secret.Secret`;
:class:`CredentialInfo` is what listing shows (no values); :class:`ChangeEvent` is what the store
tells the audit layer after each committed change. The ``check_*`` functions validate input
before anything touches storage; their errors never quote a value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, TypeAlias, cast

from connectors.errors import Conflict, CredentialMissing, InvalidRequest
from connectors.secrets.refs import CREDENTIAL_NAME, FIELD_NAME
from connectors.secrets.secret import Secret

__all__ = [
    "TENANT_ID",
    "ChangeAction",
    "ChangeEvent",
    "ChangeHook",
    "Credential",
    "CredentialInfo",
    "JSONValue",
    "check_actor",
    "check_fields",
    "check_metadata",
    "check_name",
    "check_tenant",
    "conflict",
    "freeze_json",
]

TENANT_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:@\-]{0,199}")

JSONValue: TypeAlias = "str | int | float | bool | list[JSONValue] | dict[str, JSONValue] | None"
ChangeAction: TypeAlias = Literal["put", "update_metadata", "delete", "rotate_master_key"]


@dataclass(frozen=True, slots=True)
class Credential:
    """One decrypted credential. ``fields`` are :class:`Secret`; the repr shows no value."""

    tenant: str
    name: str
    version: int
    fields: Mapping[str, Secret]
    metadata: Mapping[str, JSONValue]
    updated_at: datetime
    updated_by: str

    def secret(self, field_name: str = "value") -> Secret:
        """One field, or ``CredentialMissing`` naming the credential and the field."""
        try:
            return self.fields[field_name]
        except KeyError:
            raise CredentialMissing(
                f"{self.name}#{field_name}",
                tenant=self.tenant,
                hint=f"credential {self.name!r} has fields {sorted(self.fields)}; "
                "store the missing one or fix the reference",
            ) from None


@dataclass(frozen=True, slots=True)
class CredentialInfo:
    """What listing shows about a credential: names, version, metadata; never a value."""

    tenant: str
    name: str
    version: int
    field_names: tuple[str, ...]
    metadata: Mapping[str, JSONValue]
    created_at: datetime
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """A committed change, for the audit layer. ``name``/``version`` are None for rotations."""

    tenant: str
    name: str | None
    version: int | None
    action: ChangeAction
    actor: str
    at: datetime
    kid: str | None = None


ChangeHook: TypeAlias = Callable[[ChangeEvent], Awaitable[None]]


def freeze_json(value: object) -> JSONValue:
    # Metadata handed out must not be mutable shared state: copy through JSON.
    return cast(JSONValue, json.loads(json.dumps(value)))


def conflict(tenant: str, name: str, expected: int, actual: int) -> Conflict:
    state = "does not exist" if actual == 0 else f"is at version {actual}"
    return Conflict(
        f"credential {name!r} {state}, not the expected version {expected}",
        tenant=tenant,
        hint="read the credential again and retry with its current version",
    )


def check_tenant(tenant: str) -> None:
    if not isinstance(tenant, str) or not TENANT_ID.fullmatch(tenant):
        raise InvalidRequest(
            "a tenant id is 1-200 letters, digits and '_', '.', ':', '@', '-' "
            "starting with a letter or digit"
        )


def check_name(name: str) -> None:
    if not isinstance(name, str) or not CREDENTIAL_NAME.fullmatch(name):
        raise InvalidRequest(
            f"invalid credential name {name[:40]!r}: use 1-200 letters, digits and "
            "'_', '.', '-', '/'"
            if isinstance(name, str)
            else "a credential name must be a string"
        )


def check_actor(actor: str) -> None:
    if not isinstance(actor, str) or not actor or len(actor) > 200:
        raise InvalidRequest("every credential change needs an actor (1-200 characters)")


def check_fields(fields: Mapping[str, str | Secret]) -> dict[str, str]:
    if not fields:
        raise InvalidRequest("a credential needs at least one secret field")
    clear: dict[str, str] = {}
    for key, value in fields.items():
        if not isinstance(key, str) or not FIELD_NAME.fullmatch(key):
            raise InvalidRequest(
                f"invalid field name {str(key)[:40]!r}: use letters, digits, '_', '.', '-'"
            )
        if isinstance(value, Secret):
            clear[key] = value.reveal()
        elif isinstance(value, str):
            clear[key] = value
        else:
            raise InvalidRequest(
                f"field {key!r} must be a str or Secret, not {type(value).__name__}"
            )
    return clear


def check_metadata(metadata: Mapping[str, JSONValue] | None) -> dict[str, JSONValue]:
    if metadata is None:
        return {}
    try:
        document = json.loads(json.dumps(dict(metadata), allow_nan=False))
    except (TypeError, ValueError):
        raise InvalidRequest(
            "credential metadata must be JSON (str keys; str, number, bool, null, list, object "
            "values); secret values belong in fields, not metadata"
        ) from None
    return cast(dict[str, JSONValue], document)

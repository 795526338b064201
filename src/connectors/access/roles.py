"""Roles, permissions, and the one table that says which role may do what.

Roles are ordered ``viewer < editor < admin`` and always apply within one tenant. The
:data:`MATRIX` below is the single source of truth: the policy checks it, the tests are
parametrised over it and ``docs/COLLABORATION.md`` prints it. Each role's permissions include
those of every role below it.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from types import MappingProxyType
from typing import Final

__all__ = ["MATRIX", "Permission", "Role", "highest", "minimum_role"]


class Role(StrEnum):
    """A tenant role. Compare with ``rank`` (or ``>=``): admin > editor > viewer."""

    VIEWER = "viewer"
    EDITOR = "editor"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank >= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank > other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank <= other.rank

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Role):
            return NotImplemented
        return self.rank < other.rank

    @classmethod
    def parse(cls, value: str | Role) -> Role:
        """A role from its name; a clear ``ValueError`` listing the names otherwise."""
        if isinstance(value, Role):
            return value
        try:
            return cls(value.strip().lower())
        except (ValueError, AttributeError):
            names = ", ".join(r.value for r in cls)
            raise ValueError(f"unknown role {value!r}: use one of {names}") from None


_RANK: Final = {Role.VIEWER: 1, Role.EDITOR: 2, Role.ADMIN: 3}


class Permission(StrEnum):
    """Something an actor may be allowed to do in a tenant."""

    CONNECTOR_CONFIGURE = "connector.configure"
    CREDENTIAL_WRITE = "credential.write"
    CREDENTIAL_READ_METADATA = "credential.read_metadata"
    OPERATION_RUN = "operation.run"
    WORKFLOW_RUN = "workflow.run"
    HEALTH_READ = "health.read"
    AUDIT_READ = "audit.read"
    CIRCUIT_RESET = "circuit.reset"
    TOKEN_MANAGE = "token.manage"  # noqa: S105 - a permission name, not a password
    ACCESS_MANAGE = "access.manage"

    @classmethod
    def parse(cls, value: str | Permission) -> Permission:
        if isinstance(value, Permission):
            return value
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(p.value for p in cls)
            raise ValueError(f"unknown permission {value!r}: use one of {names}") from None


_VIEWER = frozenset({Permission.HEALTH_READ, Permission.AUDIT_READ})
_EDITOR = _VIEWER | {Permission.OPERATION_RUN, Permission.WORKFLOW_RUN}

#: Which permissions each role holds, within its own tenant. The one table.
MATRIX: Final = MappingProxyType(
    {
        Role.VIEWER: _VIEWER,
        Role.EDITOR: frozenset(_EDITOR),
        Role.ADMIN: frozenset(Permission),
    }
)


def minimum_role(permission: Permission) -> Role:
    """The lowest role that holds ``permission`` (what a denial message says is needed)."""
    for role in sorted(Role, key=lambda r: r.rank):
        if permission in MATRIX[role]:
            return role
    raise AssertionError(f"no role holds {permission}")  # the matrix gives admin everything


def highest(roles: Iterable[Role]) -> Role | None:
    """The highest of ``roles``, or ``None`` for none."""
    best: Role | None = None
    for role in roles:
        if best is None or role.rank > best.rank:
            best = role
    return best

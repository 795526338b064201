"""OAuth scope checks: refuse an operation the credential was not granted, before any I/O.

A connector definition declares the scopes each operation needs; it requests only the union of
them at consent time (:func:`union_of_operation_scopes`), and every call checks the operation's
scopes against what the token response granted (:func:`check_scopes`). The check is pure, so a
denied call makes no network request at all. Providers with scope hierarchies (Salesforce's
``full`` encompasses ``api``, ``web``...) pass a :class:`ScopeHierarchy`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from connectors.errors import ScopeDenied

__all__ = [
    "SALESFORCE_SCOPES",
    "ScopeHierarchy",
    "check_scopes",
    "missing_scopes",
    "union_of_operation_scopes",
]


@dataclass(frozen=True, slots=True)
class ScopeHierarchy:
    """Which granted scope implies which others (transitively).

    ``implies={"full": {"api", "web"}}`` means a token granted ``full`` may do what ``api`` and
    ``web`` allow.
    """

    implies: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, implies: Mapping[str, Iterable[str]]) -> ScopeHierarchy:
        return cls({k: frozenset(v) for k, v in implies.items()})

    def expand(self, granted: Iterable[str]) -> frozenset[str]:
        """``granted`` plus every scope it implies, to a fixed point."""
        result = set(granted)
        todo = list(result)
        while todo:
            for implied in self.implies.get(todo.pop(), ()):
                if implied not in result:
                    result.add(implied)
                    todo.append(implied)
        return frozenset(result)


#: Salesforce: ``full`` covers every other scope except ``refresh_token``/``offline_access``
#: (which must be requested explicitly); ``id`` and ``profile``/``email``/``address``/``phone``
#: are documented as synonyms.
SALESFORCE_SCOPES: Final = ScopeHierarchy.of(
    {
        "full": {
            "api",
            "web",
            "chatter_api",
            "visualforce",
            "content",
            "custom_permissions",
            "wave_api",
            "eclair_api",
            "pardot_api",
            "lightning",
            "id",
            "openid",
        },
        "id": {"profile", "email", "address", "phone"},
        "profile": {"id"},
        "email": {"id"},
        "address": {"id"},
        "phone": {"id"},
    }
)


def union_of_operation_scopes(
    operations: Mapping[str, Iterable[str]] | Iterable[Iterable[str]],
) -> frozenset[str]:
    """The scopes a definition requests: the union of its operations' scopes, nothing more."""
    groups = operations.values() if isinstance(operations, Mapping) else operations
    result: set[str] = set()
    for group in groups:
        if isinstance(group, str):
            raise TypeError("each operation's scopes must be a collection of strings, not a str")
        result.update(s for s in group if s)
    return frozenset(result)


def missing_scopes(
    needed: Iterable[str],
    granted: Iterable[str],
    *,
    hierarchy: ScopeHierarchy | None = None,
) -> tuple[str, ...]:
    """The needed scopes not covered by ``granted`` (sorted, without duplicates)."""
    have = hierarchy.expand(granted) if hierarchy is not None else frozenset(granted)
    return tuple(sorted({s for s in needed if s and s not in have}))


def check_scopes(
    needed: Iterable[str],
    granted: Iterable[str],
    *,
    connector: str | None,
    tenant: str | None,
    operation: str | None,
    hierarchy: ScopeHierarchy | None = None,
) -> None:
    """Raise :class:`ScopeDenied` naming what is missing if ``granted`` lacks part of ``needed``.

    Pure: call it before sending anything.
    """
    if isinstance(needed, str) or isinstance(granted, str):
        raise TypeError("pass scopes as collections of strings, not a single str")
    needed_set = tuple(sorted({s for s in needed if s}))
    have = hierarchy.expand(granted) if hierarchy is not None else frozenset(granted)
    missing = tuple(s for s in needed_set if s not in have)
    if not missing:
        return
    raise ScopeDenied(
        f"the credential lacks the scope(s) {', '.join(missing)} needed for "
        f"{operation or 'this operation'}",
        needed=needed_set,
        provided=tuple(sorted(have)),
        connector=connector,
        tenant=tenant,
        operation=operation,
        hint="connect the credential again, granting: " + " ".join(missing),
    )

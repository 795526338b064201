"""Versioned migrations of connector definitions, applied on load before validation.

A definition says which schema it is written in (``schema_version``; absent means the current
one). Older documents are upgraded one version at a time by pure, declarative steps, so the
loader can still point at the line a value came from and ``connectors validate --upgrade`` can
rewrite the file in place, keeping its comments.

Schema 1 → 2 (durations in milliseconds, explicit names)::

    resilience.retry.attempts      → resilience.retry.max_attempts
    resilience.retry.delay    (s)  → resilience.retry.base_delay_ms   (× 1000)
    resilience.retry.max_delay (s) → resilience.retry.max_delay_ms    (× 1000)
    resilience.timeout        (s)  → resilience.timeout_ms            (× 1000)
    resilience.deadline       (s)  → resilience.deadline_ms           (× 1000)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from connectors.config.definition import SCHEMA_VERSION

__all__ = [
    "MIGRATIONS",
    "Change",
    "Migration",
    "MigrationError",
    "MigrationResult",
    "Rename",
    "migrate",
]

Path = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Rename:
    """Move the value at ``old`` to ``new`` (same parent mapping), scaling numbers by ``scale``."""

    old: Path
    new: Path
    scale: float | None = None


@dataclass(frozen=True, slots=True)
class Migration:
    """The steps from ``source`` to ``source + 1``."""

    source: int
    description: str
    steps: tuple[Rename, ...]


@dataclass(frozen=True, slots=True)
class Change:
    """One applied step: where a value was and is, and its value before and after."""

    old: Path
    new: Path
    before: object
    after: object


@dataclass(slots=True)
class MigrationResult:
    """The migrated document and what was done to it."""

    data: dict[str, object]
    source_version: int
    target_version: int
    changes: list[Change] = field(default_factory=list)

    @property
    def migrated(self) -> bool:
        return self.source_version != self.target_version


class MigrationError(ValueError):
    """A document cannot be migrated; ``path`` says where (for ``file:line:col``)."""

    def __init__(self, message: str, path: Path, hint: str | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.hint = hint


def _seconds_to_ms(path: str) -> str:
    return f"{path} is in seconds in schema 1; schema 2 takes milliseconds"


MIGRATIONS: Final[Mapping[int, Migration]] = {
    1: Migration(
        source=1,
        description="durations in milliseconds; retry.attempts renamed max_attempts",
        steps=(
            Rename(("resilience", "retry", "attempts"), ("resilience", "retry", "max_attempts")),
            Rename(
                ("resilience", "retry", "delay"), ("resilience", "retry", "base_delay_ms"), 1000
            ),
            Rename(
                ("resilience", "retry", "max_delay"),
                ("resilience", "retry", "max_delay_ms"),
                1000,
            ),
            Rename(("resilience", "timeout"), ("resilience", "timeout_ms"), 1000),
            Rename(("resilience", "deadline"), ("resilience", "deadline_ms"), 1000),
        ),
    ),
}


def migrate(data: Mapping[str, object], *, target: int = SCHEMA_VERSION) -> MigrationResult:
    """Upgrade ``data`` (a definition document) to schema ``target``; never mutates ``data``.

    Raises :class:`MigrationError` for an unknown or future ``schema_version`` and for values a
    step cannot convert.
    """
    raw = data.get("schema_version", target)
    if isinstance(raw, bool) or not isinstance(raw, int):
        raise MigrationError(
            f"schema_version must be an integer, not {raw!r}",
            ("schema_version",),
            hint=f"write schema_version: {target}",
        )
    if raw > target:
        raise MigrationError(
            f"schema_version {raw} is newer than this framework supports ({target})",
            ("schema_version",),
            hint="upgrade the connectors package, or write the definition in the older schema",
        )
    if raw < 1 or (raw < target and raw not in MIGRATIONS):
        raise MigrationError(
            f"there is no migration from schema_version {raw}",
            ("schema_version",),
            hint=f"supported schema versions are 1 to {target}",
        )
    result = MigrationResult(_copy(data), raw, target)
    version = raw
    while version < target:
        for step in MIGRATIONS[version].steps:
            change = _apply(result.data, step)
            if change is not None:
                result.changes.append(change)
        version += 1
    if result.migrated:
        result.data["schema_version"] = target
        result.changes.append(Change(("schema_version",), ("schema_version",), raw, target))
    return result


def _copy(value: object) -> dict[str, object]:
    def deep(v: object) -> object:
        if isinstance(v, Mapping):
            return {k: deep(x) for k, x in v.items()}
        if isinstance(v, list):
            return [deep(x) for x in v]
        return v

    copied = deep(value)
    assert isinstance(copied, dict)
    return copied


def _apply(data: dict[str, object], step: Rename) -> Change | None:
    parent: object = data
    for key in step.old[:-1]:
        if not isinstance(parent, dict) or key not in parent:
            return None
        parent = parent[key]
    if not isinstance(parent, dict) or step.old[-1] not in parent:
        return None
    new_key = step.new[-1]
    if new_key in parent:
        raise MigrationError(
            f"both {'.'.join(step.old)} (schema 1) and {'.'.join(step.new)} are set",
            step.new,
            hint=f"remove {'.'.join(step.old)}",
        )
    before = parent.pop(step.old[-1])
    after = before
    if step.scale is not None and before is not None:
        if isinstance(before, bool) or not isinstance(before, int | float):
            raise MigrationError(
                f"{'.'.join(step.old)} must be a number of seconds, not {before!r}",
                step.old,
                hint=_seconds_to_ms(".".join(step.old)),
            )
        scaled = before * step.scale
        after = int(scaled) if float(scaled).is_integer() else scaled
    parent[new_key] = after
    return Change(step.old, step.new, before, after)

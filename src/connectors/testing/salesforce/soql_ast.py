"""The SOQL abstract syntax tree the parser produces and the evaluator consumes.

Nodes are frozen dataclasses, so a parsed query is a value: it can be cached, compared in tests
and shared between query cursors.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as _field
from datetime import date, datetime
from typing import Literal as TypingLiteral
from typing import TypeAlias

__all__ = [
    "And",
    "Comparison",
    "Condition",
    "CountExpr",
    "FieldRef",
    "InList",
    "Like",
    "Literal",
    "LiteralValue",
    "Not",
    "Operator",
    "Or",
    "OrderItem",
    "Query",
    "RelativeDate",
    "SelectItem",
    "Value",
]

LiteralValue: TypeAlias = str | int | float | bool | date | datetime | None
Operator = TypingLiteral["=", "!=", "<", ">", "<=", ">="]


@dataclass(frozen=True, slots=True)
class FieldRef:
    """A field path as written: ``("Name",)`` or ``("Account", "Name")``; ``pos`` is its offset."""

    path: tuple[str, ...]
    pos: int = _field(default=0, compare=False)

    @property
    def dotted(self) -> str:
        """The path joined with dots, as written in the query."""
        return ".".join(self.path)


@dataclass(frozen=True, slots=True)
class CountExpr:
    """``COUNT()`` (``field is None``) or ``COUNT(field)``."""

    field: FieldRef | None


SelectItem: TypeAlias = FieldRef | CountExpr


@dataclass(frozen=True, slots=True)
class Literal:
    """A literal value: string, number, boolean, ``NULL``, date or datetime."""

    value: LiteralValue


@dataclass(frozen=True, slots=True)
class RelativeDate:
    """A date literal such as ``TODAY`` or ``LAST_N_DAYS:7`` (``n`` is None when it takes none)."""

    name: str
    n: int | None = None


Value: TypeAlias = Literal | RelativeDate


@dataclass(frozen=True, slots=True)
class Comparison:
    """``field <op> value``."""

    field: FieldRef
    op: Operator
    value: Value


@dataclass(frozen=True, slots=True)
class Like:
    """``field LIKE 'pattern'``; ``pattern`` keeps SOQL's escapes (``\\%``, ``\\_``) decoded."""

    field: FieldRef
    pattern: tuple[tuple[TypingLiteral["literal", "any", "one"], str], ...]


@dataclass(frozen=True, slots=True)
class InList:
    """``field IN (...)`` or ``field NOT IN (...)``."""

    field: FieldRef
    values: tuple[Literal, ...]
    negated: bool = False


@dataclass(frozen=True, slots=True)
class And:
    """All operands hold."""

    operands: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """At least one operand holds."""

    operands: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Not:
    """The operand does not hold."""

    operand: Condition


Condition: TypeAlias = Comparison | Like | InList | And | Or | Not


@dataclass(frozen=True, slots=True)
class OrderItem:
    """One ``ORDER BY`` key; ``nulls_first`` defaults to SOQL's rule (first for ASC)."""

    field: FieldRef
    descending: bool = False
    nulls_first: bool | None = None

    @property
    def effective_nulls_first(self) -> bool:
        """SOQL puts nulls first in ascending order and last in descending order by default."""
        return (not self.descending) if self.nulls_first is None else self.nulls_first


@dataclass(frozen=True, slots=True)
class Query:
    """A whole ``SELECT`` statement."""

    select: tuple[SelectItem, ...]
    sobject: str
    sobject_pos: int = _field(default=0, compare=False)
    where: Condition | None = None
    order_by: tuple[OrderItem, ...] = ()
    limit: int | None = None
    offset: int | None = None

    @property
    def is_count(self) -> bool:
        """Whether the select list is an aggregate count."""
        return any(isinstance(item, CountExpr) for item in self.select)

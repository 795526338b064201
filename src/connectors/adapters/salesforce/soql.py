"""Safe SOQL: bind ``:name`` parameters instead of concatenating values into a query.

::

    bind("SELECT Id FROM Contact WHERE Email = :email AND CreatedDate > :since",
         email="o'brien@example.com", since=datetime(2024, 1, 1, tzinfo=UTC))
    # SELECT Id FROM Contact WHERE Email = 'o\\'brien@example.com'
    #     AND CreatedDate > 2024-01-01T00:00:00Z

Values are rendered by Salesforce's literal rules (the SOQL quoted-string escapes page):

=====================  =====================================================================
Python value           SOQL
=====================  =====================================================================
``str``                ``'...'`` with ``\\`` ``'`` ``"`` newline, CR, tab, ``\\b``, ``\\f`` escaped
``bool``               ``true`` / ``false``
``int``, ``Decimal``,  the number (``float`` NaN and infinities are refused)
``float``
``None``               ``null``
``date``               ``YYYY-MM-DD``
``datetime``           UTC ``YYYY-MM-DDThh:mm:ssZ`` (a naive datetime is refused: say its zone)
list, tuple, set       ``(v1, v2, ...)`` for ``IN`` (non-empty)
:class:`LikePattern`   a quoted ``LIKE`` pattern, see :func:`like`
=====================  =====================================================================

A ``:name`` is a parameter only outside string literals and when it does not follow a word
character (so ``LAST_N_DAYS:7`` is left alone). Every parameter must be bound and every bound
value used; a mistake raises :class:`~connectors.errors.InvalidRequest` naming the parameter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Final, Literal, TypeAlias

from connectors.errors import FieldError, InvalidRequest

__all__ = [
    "LikePattern",
    "SoqlValue",
    "bind",
    "contains",
    "ends_with",
    "escape_like",
    "like",
    "quote",
    "quote_string",
    "starts_with",
]

_ESCAPES: Final = {
    "\\": "\\\\",
    "'": "\\'",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}
_TRANSLATION: Final = str.maketrans(_ESCAPES)
_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

PatternPart: TypeAlias = tuple[Literal["literal", "any", "one"], str]


@dataclass(frozen=True, slots=True)
class LikePattern:
    """A ``LIKE`` pattern: literal text and the wildcards ``%`` (any run) and ``_`` (one char).

    Build one with :func:`like`, :func:`starts_with`, :func:`contains` or :func:`ends_with`.
    """

    parts: tuple[PatternPart, ...]

    def render(self) -> str:
        """The quoted SOQL literal (literal ``%``/``_`` escaped as ``\\%``/``\\_``)."""
        out: list[str] = []
        for kind, text in self.parts:
            if kind == "any":
                out.append("%")
            elif kind == "one":
                out.append("_")
            else:
                out.append(text.translate(_TRANSLATION).replace("%", "\\%").replace("_", "\\_"))
        return "'" + "".join(out) + "'"


def escape_like(text: str) -> str:
    """``text`` with ``\\``, ``%`` and ``_`` escaped, for concatenation into a :func:`like`
    pattern: ``like(escape_like(prefix) + "%")`` matches values starting with ``prefix``."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def like(pattern: str) -> LikePattern:
    """A ``LIKE`` pattern in which ``%`` and ``_`` are wildcards and ``\\%``, ``\\_``, ``\\\\``
    stand for the literal characters (what :func:`escape_like` produces)."""
    parts: list[PatternPart] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "\\%_":
            parts.append(("literal", pattern[i + 1]))
            i += 2
            continue
        if char == "%":
            parts.append(("any", "%"))
        elif char == "_":
            parts.append(("one", "_"))
        else:
            parts.append(("literal", char))
        i += 1
    return LikePattern(_merge(parts))


def _merge(parts: list[PatternPart]) -> tuple[PatternPart, ...]:
    merged: list[PatternPart] = []
    for kind, text in parts:
        if kind == "literal" and merged and merged[-1][0] == "literal":
            merged[-1] = ("literal", merged[-1][1] + text)
        else:
            merged.append((kind, text))
    return tuple(merged)


def starts_with(text: str) -> LikePattern:
    """Values starting with ``text`` (taken literally)."""
    return LikePattern(_merge([("literal", text), ("any", "%")]))


def ends_with(text: str) -> LikePattern:
    """Values ending with ``text`` (taken literally)."""
    return LikePattern(_merge([("any", "%"), ("literal", text)]))


def contains(text: str) -> LikePattern:
    """Values containing ``text`` (taken literally)."""
    return LikePattern(_merge([("any", "%"), ("literal", text), ("any", "%")]))


SoqlScalar: TypeAlias = str | bool | int | float | Decimal | date | datetime | LikePattern | None
SoqlValue: TypeAlias = (
    SoqlScalar | list[SoqlScalar] | tuple[SoqlScalar, ...] | set[str] | frozenset[str]
)


def quote_string(value: str) -> str:
    """A SOQL string literal for ``value``."""
    return "'" + value.translate(_TRANSLATION) + "'"


def quote(value: object, *, name: str = "value") -> str:
    """The SOQL literal for one Python value (see the module table)."""
    if isinstance(value, LikePattern):
        return value.render()
    if isinstance(value, str):
        return quote_string(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _error(name, f"{value!r} has no SOQL literal", "pass a finite number")
        return repr(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise _error(name, f"{value!r} has no SOQL literal", "pass a finite number")
        return format(value, "f")
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise _error(
                name,
                "a naive datetime is ambiguous",
                "attach a time zone, e.g. datetime(..., tzinfo=UTC)",
            )
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else list(value)
        if not items:
            raise _error(name, "an empty list cannot be used with IN", "pass at least one value")
        if any(isinstance(item, list | tuple | set | frozenset) for item in items):
            raise _error(name, "nested lists have no SOQL literal", "pass a flat list")
        return "(" + ", ".join(quote(item, name=name) for item in items) + ")"
    raise _error(
        name,
        f"values of type {type(value).__name__} have no SOQL literal",
        "pass a str, number, bool, None, date, datetime, list or like(...) pattern",
    )


def _error(name: str, problem: str, hint: str) -> InvalidRequest:
    return InvalidRequest(
        f"SOQL parameter :{name}: {problem}",
        fields=(FieldError(name, problem, "INVALID_BIND"),),
        provider_code="INVALID_BIND",
        hint=hint,
    )


def bind(soql: str, params: Mapping[str, object] | None = None, /, **kwargs: object) -> str:
    """Replace every ``:name`` outside string literals with the quoted value of ``name``.

    Raises :class:`InvalidRequest` for a parameter without a value, a value no parameter uses,
    an unterminated string literal, or a value with no SOQL literal.
    """
    values: dict[str, object] = {**(params or {}), **kwargs}
    out: list[str] = []
    used: set[str] = set()
    missing: list[str] = []
    i, n = 0, len(soql)
    start = 0
    while i < n:
        char = soql[i]
        if char == "'":
            j = i + 1
            while j < n and soql[j] != "'":
                j += 2 if soql[j] == "\\" else 1
            if j >= n:
                raise InvalidRequest(
                    f"the SOQL text has an unterminated string literal at position {i}",
                    provider_code="MALFORMED_QUERY",
                    hint="bind values with :name instead of quoting them yourself",
                )
            i = j + 1
            continue
        if char == ":" and (i == 0 or not (soql[i - 1].isalnum() or soql[i - 1] == "_")):
            match = _NAME.match(soql, i + 1)
            if match is not None:
                name = match.group(0)
                out.append(soql[start:i])
                if name in values:
                    out.append(quote(values[name], name=name))
                    used.add(name)
                else:
                    missing.append(name)
                i = start = match.end()
                continue
        i += 1
    if missing:
        names = ", ".join(f":{m}" for m in dict.fromkeys(missing))
        raise InvalidRequest(
            f"SOQL parameter(s) {names} not bound",
            fields=tuple(
                FieldError(m, "no value given", "UNBOUND") for m in dict.fromkeys(missing)
            ),
            provider_code="UNBOUND_PARAMETER",
            hint="pass a value for each :name as a keyword argument",
        )
    unused = [k for k in values if k not in used]
    if unused:
        raise InvalidRequest(
            f"value(s) given for {', '.join(unused)} but the SOQL text has no such :parameter",
            provider_code="UNUSED_PARAMETER",
            hint="check the parameter names (a :name inside quotes is not a parameter)",
        )
    out.append(soql[start:])
    return "".join(out)

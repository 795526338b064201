"""Check a parsed SOQL query against the schema and compile it into plain Python callables.

Compilation resolves every field path once (``INVALID_FIELD`` / ``INVALID_TYPE`` come from here),
checks literal types the way Salesforce does, and returns a :class:`CompiledQuery` whose
``matches``, ``sort_key`` and ``project`` work on one record at a time, so a query over a lazily
generated data set never needs the whole set in memory.

Semantics follow SOQL: text comparisons and ``LIKE`` ignore case; ``!=`` and ``NOT IN`` match
nulls; ordering puts nulls first in ascending and last in descending order unless told otherwise;
relative date literals cover whole UTC days.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as dc_field
from datetime import UTC, date, datetime, time, timedelta
from functools import total_ordering

from .ids import normalize_id
from .schema import (
    DATE_TYPES,
    NUMBER_TYPES,
    STRING_TYPES,
    FieldDef,
    FieldValue,
    Record,
    Schema,
    SObjectDef,
)
from .soql_ast import (
    And,
    Comparison,
    Condition,
    CountExpr,
    FieldRef,
    InList,
    Like,
    Literal,
    LiteralValue,
    Not,
    Or,
    OrderItem,
    Query,
    RelativeDate,
)
from .soql_errors import InvalidField, InvalidType, MalformedQuery, located_message
from .values import to_json_value

__all__ = [
    "CompiledQuery",
    "Lookup",
    "ResolvedField",
    "compile_query",
    "relative_date_range",
]

Lookup = Callable[[str], Record | None]
"""Finds a (non-deleted) record by id, for relationship paths such as ``Account.Name``."""

Predicate = Callable[[Record], bool]
_MAX_RELATIONSHIP_DEPTH = 5


@dataclass(frozen=True)
class ResolvedField:
    """A field path resolved against the schema: relationships to walk, then the field."""

    relationships: tuple[tuple[FieldDef, SObjectDef], ...]
    field: FieldDef
    sobject: SObjectDef

    @property
    def header(self) -> str:
        """Canonical dotted name (``Account.Name``), as Bulk CSV headers use."""
        return ".".join(
            [*(r.relationship_name or "" for r, _ in self.relationships), self.field.name]
        )


@dataclass(frozen=True)
class CompiledQuery:
    """A query ready to run: type, filters, ordering and projection as callables."""

    query: Query
    sobject: SObjectDef
    fields: tuple[ResolvedField, ...]
    matches: Predicate | None
    sort_key: Callable[[Record], tuple[object, ...]] | None
    getters: tuple[Callable[[Record], FieldValue], ...]
    count_field: ResolvedField | None
    version: str
    lookup: Lookup = dc_field(compare=False, repr=False)

    @property
    def is_count(self) -> bool:
        """``SELECT COUNT() ...`` or ``SELECT COUNT(field) ...``."""
        return self.query.is_count

    @property
    def is_count_star(self) -> bool:
        """``SELECT COUNT() ...``: the answer is only ``totalSize``."""
        return self.query.is_count and self.count_field is None

    def project(self, record: Record) -> dict[str, object]:
        """The JSON object Salesforce returns for ``record``: attributes, then selected fields."""
        out: dict[str, object] = {"attributes": _attributes(self.sobject, record, self.version)}
        for resolved, getter in zip(self.fields, self.getters, strict=True):
            if not resolved.relationships:
                out[resolved.field.name] = to_json_value(getter(record))
                continue
            _project_path(out, resolved, record, self.lookup, self.version)
        return out

    def row(self, record: Record) -> list[FieldValue]:
        """The selected values in order (for CSV results)."""
        return [getter(record) for getter in self.getters]


def _attributes(sobject: SObjectDef, record: Record, version: str) -> dict[str, object]:
    return {
        "type": sobject.name,
        "url": f"/services/data/v{version}/sobjects/{sobject.name}/{record['Id']}",
    }


def _project_path(
    out: dict[str, object], resolved: ResolvedField, record: Record, lookup: Lookup, version: str
) -> None:
    target: dict[str, object] = out
    current: Record | None = record
    for ref_field, parent_type in resolved.relationships:
        name = ref_field.relationship_name or ref_field.name
        parent_id = current.get(ref_field.name) if current is not None else None
        parent = lookup(parent_id) if isinstance(parent_id, str) else None
        if parent is None:
            if name not in target:
                target[name] = None
            return
        existing = target.get(name)
        if isinstance(existing, dict):
            nested: dict[str, object] = existing
        else:
            nested = {"attributes": _attributes(parent_type, parent, version)}
            target[name] = nested
        target = nested
        current = parent
    if current is not None:
        target[resolved.field.name] = to_json_value(current.get(resolved.field.name))


def relative_date_range(literal: RelativeDate, now: datetime) -> tuple[datetime, datetime]:
    """The half-open UTC interval ``[start, end)`` a relative date literal stands for."""
    today = datetime.combine(now.astimezone(UTC).date(), time(), UTC)
    day = timedelta(days=1)
    n = literal.n or 0
    week_start = today - timedelta(days=(today.weekday() + 1) % 7)  # weeks start on Sunday
    month_start = today.replace(day=1)
    next_month = (month_start + timedelta(days=32)).replace(day=1)
    prev_month = (month_start - day).replace(day=1)
    year_start = today.replace(month=1, day=1)
    ranges: dict[str, tuple[datetime, datetime]] = {
        "YESTERDAY": (today - day, today),
        "TODAY": (today, today + day),
        "TOMORROW": (today + day, today + 2 * day),
        "LAST_WEEK": (week_start - 7 * day, week_start),
        "THIS_WEEK": (week_start, week_start + 7 * day),
        "NEXT_WEEK": (week_start + 7 * day, week_start + 14 * day),
        "LAST_MONTH": (prev_month, month_start),
        "THIS_MONTH": (month_start, next_month),
        "NEXT_MONTH": (next_month, (next_month + timedelta(days=32)).replace(day=1)),
        "LAST_YEAR": (year_start.replace(year=year_start.year - 1), year_start),
        "THIS_YEAR": (year_start, year_start.replace(year=year_start.year + 1)),
        "NEXT_YEAR": (
            year_start.replace(year=year_start.year + 1),
            year_start.replace(year=year_start.year + 2),
        ),
        "LAST_90_DAYS": (today - 90 * day, today + day),
        "NEXT_90_DAYS": (today + day, today + 91 * day),
        "LAST_N_DAYS": (today - n * day, today + day),
        "NEXT_N_DAYS": (today + day, today + (n + 1) * day),
    }
    return ranges[literal.name]


def compile_query(
    query: Query, text: str, schema: Schema, *, lookup: Lookup, now: datetime, version: str
) -> CompiledQuery:
    """Resolve ``query`` (parsed from ``text``) against ``schema``; raise a SoqlError if invalid."""
    sobject = schema.get(query.sobject)
    if sobject is None:
        raise InvalidType(
            located_message(
                text,
                query.sobject_pos,
                f"sObject type '{query.sobject}' is not supported. If you are attempting to use a "
                "custom object, be sure to append the '__c' after the entity name. Please "
                "reference your WSDL or the describe call for the appropriate names.",
            )
        )
    compiler = _Compiler(text, schema, sobject, lookup, now)
    fields: list[ResolvedField] = []
    count_field: ResolvedField | None = None
    for item in query.select:
        if isinstance(item, CountExpr):
            count_field = compiler.resolve(item.field) if item.field is not None else None
        else:
            fields.append(compiler.resolve(item))
    matches = compiler.condition(query.where) if query.where is not None else None
    sort_key = compiler.sort_key(query.order_by) if query.order_by else None
    compiled = CompiledQuery(
        query=query,
        sobject=sobject,
        fields=tuple(fields),
        matches=matches,
        sort_key=sort_key,
        getters=tuple(compiler.getter(f) for f in fields),
        count_field=count_field,
        version=version,
        lookup=lookup,
    )
    return compiled


@total_ordering
class _Descending:
    """Wraps a sort value so that it orders in reverse."""

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and self.value == other.value

    def __lt__(self, other: _Descending) -> bool:
        return other.value < self.value  # type: ignore[operator, no-any-return]

    def __hash__(self) -> int:
        return hash(self.value)


def _sortable(value: FieldValue) -> object:
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time(), UTC)
    return value


def _comparable(value: FieldValue | LiteralValue, fdef: FieldDef) -> object:
    """Normalise a value for comparison with the field's semantics."""
    if value is None:
        return None
    if fdef.type in ("id", "reference") and isinstance(value, str):
        return (normalize_id(value) or value).lower()
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, datetime):
        return value
    if isinstance(value, date):
        return datetime.combine(value, time(), UTC)
    if isinstance(value, bool):
        return value
    return float(value)


class _Compiler:
    def __init__(
        self, text: str, schema: Schema, sobject: SObjectDef, lookup: Lookup, now: datetime
    ) -> None:
        self.text = text
        self.schema = schema
        self.sobject = sobject
        self.lookup = lookup
        self.now = now
        self.resolved: dict[FieldRef, ResolvedField] = {}

    def resolve(self, ref: FieldRef) -> ResolvedField:
        if ref in self.resolved:
            return self.resolved[ref]
        current = self.sobject
        relationships: list[tuple[FieldDef, SObjectDef]] = []
        *path, last = ref.path
        if len(path) > _MAX_RELATIONSHIP_DEPTH:
            raise MalformedQuery(
                located_message(self.text, ref.pos, "relationship paths are limited to 5 levels")
            )
        for part in path:
            ref_field = current.relationship(part)
            target = (
                self.schema.get(ref_field.reference_to[0])
                if ref_field and ref_field.reference_to
                else None
            )
            if ref_field is None or target is None:
                raise InvalidField(
                    located_message(
                        self.text,
                        ref.pos,
                        f"Didn't understand relationship '{part}' in field path. If you are "
                        "attempting to use a custom relationship, be sure to append the '__r' "
                        "after the custom relationship name. Please reference your WSDL or the "
                        "describe call for the appropriate names.",
                    )
                )
            relationships.append((ref_field, target))
            current = target
        fdef = current.field(last)
        if fdef is None:
            raise InvalidField(
                located_message(
                    self.text,
                    ref.pos,
                    f"No such column '{last}' on entity '{current.name}'. If you are attempting "
                    "to use a custom field, be sure to append the '__c' after the custom field "
                    "name. Please reference your WSDL or the describe call for the appropriate "
                    "names.",
                )
            )
        resolved = ResolvedField(tuple(relationships), fdef, current)
        self.resolved[ref] = resolved
        return resolved

    def getter(self, resolved: ResolvedField) -> Callable[[Record], FieldValue]:
        name = resolved.field.name
        if not resolved.relationships:
            return lambda record: record.get(name)
        hops = tuple(r.name for r, _ in resolved.relationships)
        lookup = self.lookup

        def get(record: Record) -> FieldValue:
            current: Record | None = record
            for hop in hops:
                parent_id = current.get(hop) if current is not None else None
                current = lookup(parent_id) if isinstance(parent_id, str) else None
                if current is None:
                    return None
            return None if current is None else current.get(name)

        return get

    # -- WHERE ------------------------------------------------------------------------------

    def condition(self, node: Condition) -> Predicate:
        if isinstance(node, And):
            parts = tuple(self.condition(o) for o in node.operands)
            return lambda r: all(p(r) for p in parts)
        if isinstance(node, Or):
            parts = tuple(self.condition(o) for o in node.operands)
            return lambda r: any(p(r) for p in parts)
        if isinstance(node, Not):
            inner = self.condition(node.operand)
            return lambda r: not inner(r)
        if isinstance(node, Comparison):
            return self.comparison(node)
        if isinstance(node, Like):
            return self.like(node)
        return self.in_list(node)

    def check_literal(self, ref: FieldRef, fdef: FieldDef, literal: Literal) -> None:
        value = literal.value
        if value is None:
            return
        ftype = fdef.type
        if ftype in STRING_TYPES:
            ok, expected = isinstance(value, str), "string and should be enclosed in quotes"
        elif ftype in NUMBER_TYPES:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            expected = "number and should not be enclosed in quotes"
        elif ftype == "boolean":
            ok, expected = isinstance(value, bool), "boolean and should not be enclosed in quotes"
        elif ftype == "date":
            ok = isinstance(value, date) and not isinstance(value, datetime)
            expected = "date and should not be enclosed in quotes"
        else:
            ok, expected = (
                isinstance(value, datetime),
                "dateTime and should not be enclosed in quotes",
            )
        if not ok:
            raise MalformedQuery(
                located_message(
                    self.text,
                    ref.pos,
                    f"value of filter criterion for field '{fdef.name}' must be of type {expected}",
                )
            )

    def comparison(self, node: Comparison) -> Predicate:
        resolved = self.resolve(node.field)
        fdef = resolved.field
        get = self.getter(resolved)
        op = node.op
        if isinstance(node.value, RelativeDate):
            if fdef.type not in DATE_TYPES:
                raise MalformedQuery(
                    located_message(
                        self.text,
                        node.field.pos,
                        f"value of filter criterion for field '{fdef.name}' must be of type "
                        f"{'string' if fdef.type in STRING_TYPES else fdef.type} and should not "
                        "use a date literal",
                    )
                )
            start, end = relative_date_range(node.value, self.now)
            return _range_predicate(get, op, start, end)
        self.check_literal(node.field, fdef, node.value)
        target = _comparable(node.value.value, fdef)
        if target is None:
            if op == "=":
                return lambda r: get(r) is None
            if op == "!=":
                return lambda r: get(r) is not None
            return lambda r: False
        if fdef.type == "boolean" and op not in ("=", "!="):
            raise MalformedQuery(
                located_message(
                    self.text, node.field.pos, f"invalid operator on field '{fdef.name}'"
                )
            )
        compare = _OPERATORS[op]

        def predicate(record: Record) -> bool:
            value = _comparable(get(record), fdef)
            if value is None:
                return op == "!="
            return compare(value, target)

        return predicate

    def like(self, node: Like) -> Predicate:
        resolved = self.resolve(node.field)
        if resolved.field.type not in STRING_TYPES:
            raise MalformedQuery(
                located_message(
                    self.text, node.field.pos, f"invalid operator on field '{resolved.field.name}'"
                )
            )
        pieces = []
        for kind, text in node.pattern:
            pieces.append(".*" if kind == "any" else "." if kind == "one" else re.escape(text))
        regex = re.compile("".join(pieces), re.IGNORECASE | re.DOTALL)
        get = self.getter(resolved)

        def predicate(record: Record) -> bool:
            value = get(record)
            return isinstance(value, str) and regex.fullmatch(value) is not None

        return predicate

    def in_list(self, node: InList) -> Predicate:
        resolved = self.resolve(node.field)
        fdef = resolved.field
        for literal in node.values:
            self.check_literal(node.field, fdef, literal)
        targets = {_comparable(v.value, fdef) for v in node.values}
        get = self.getter(resolved)
        negated = node.negated

        def predicate(record: Record) -> bool:
            found = _comparable(get(record), fdef) in targets
            return found != negated

        return predicate

    # -- ORDER BY ---------------------------------------------------------------------------

    def sort_key(self, items: tuple[OrderItem, ...]) -> Callable[[Record], tuple[object, ...]]:
        getters = [(self.getter(self.resolve(item.field)), item) for item in items]

        def key(record: Record) -> tuple[object, ...]:
            out: list[object] = []
            for get, item in getters:
                value = get(record)
                is_null = value is None
                # Rank nulls before or after every value, independent of direction.
                null_rank = (
                    (0 if is_null else 1) if item.effective_nulls_first else (1 if is_null else 0)
                )
                sortable = 0 if is_null else _sortable(value)
                out.append(null_rank)
                out.append(_Descending(sortable) if item.descending and not is_null else sortable)
            return tuple(out)

        return key


def _lt(a: object, b: object) -> bool:
    return a < b  # type: ignore[operator, no-any-return]


_OPERATORS: dict[str, Callable[[object, object], bool]] = {
    "=": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": _lt,
    ">": lambda a, b: _lt(b, a),
    "<=": lambda a, b: not _lt(b, a),
    ">=": lambda a, b: not _lt(a, b),
}


def _range_predicate(
    get: Callable[[Record], FieldValue], op: str, start: datetime, end: datetime
) -> Predicate:
    def predicate(record: Record) -> bool:
        raw = get(record)
        if raw is None:
            return op == "!="
        value = _comparable(raw, _DATE_FIELD)
        assert isinstance(value, datetime)
        inside = start <= value < end
        return {
            "=": inside,
            "!=": not inside,
            "<": value < start,
            "<=": value < end,
            ">": value >= end,
            ">=": value >= start,
        }[op]

    return predicate


_DATE_FIELD = FieldDef("_", "datetime", "_")

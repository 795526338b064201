"""Query checking and evaluation: field resolution, literal types, operator and null semantics,
date literals, ordering; a property test against an independent reference evaluator."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.testing.salesforce.schema import Record, default_schema
from connectors.testing.salesforce.soql_ast import RelativeDate
from connectors.testing.salesforce.soql_errors import InvalidField, InvalidType, MalformedQuery
from connectors.testing.salesforce.soql_eval import compile_query, relative_date_range
from connectors.testing.salesforce.soql_parser import parse_soql

SCHEMA = default_schema()
NOW = datetime(2024, 5, 15, 13, 30, tzinfo=UTC)  # a Wednesday
ACCOUNT_ID = "0015g0000000001AAA"
PARENTS: dict[str, Record] = {
    ACCOUNT_ID: {"Id": ACCOUNT_ID, "Name": "Parent Co", "IsDeleted": False}
}


def compile_(text: str):
    return compile_query(
        parse_soql(text), text, SCHEMA, lookup=PARENTS.get, now=NOW, version="62.0"
    )


def matching(where: str, records: list[Record], sobject: str = "Account") -> list[Record]:
    query = compile_(f"SELECT Id FROM {sobject} WHERE {where}")
    assert query.matches is not None
    return [r for r in records if query.matches(r)]


def names(records: list[Record]) -> list[object]:
    return [r.get("Name") for r in records]


ACCOUNTS: list[Record] = [
    {
        "Id": "a1",
        "Name": "Acme",
        "NumberOfEmployees": 10,
        "AnnualRevenue": 5.5,
        "Industry": "Energy",
    },
    {
        "Id": "a2",
        "Name": "acme labs",
        "NumberOfEmployees": 200,
        "AnnualRevenue": None,
        "Industry": None,
    },
    {
        "Id": "a3",
        "Name": "Globex",
        "NumberOfEmployees": None,
        "AnnualRevenue": 100.0,
        "Industry": "Banking",
    },
    {"Id": "a4", "Name": None, "NumberOfEmployees": 10, "AnnualRevenue": 0.0, "Industry": "energy"},
]


def test_string_equality_and_like_ignore_case():
    assert names(matching("Name = 'ACME'", ACCOUNTS)) == ["Acme"]
    assert names(matching("Name LIKE 'acme%'", ACCOUNTS)) == ["Acme", "acme labs"]
    assert names(matching("Name LIKE '_lobe_'", ACCOUNTS)) == ["Globex"]
    assert names(matching("Industry IN ('ENERGY')", ACCOUNTS)) == ["Acme", None]


def test_not_equal_and_not_in_include_nulls_while_ordering_operators_do_not():
    assert names(matching("Industry != 'Energy'", ACCOUNTS)) == ["acme labs", "Globex"]
    assert names(matching("Industry NOT IN ('Energy')", ACCOUNTS)) == ["acme labs", "Globex"]
    assert names(matching("NumberOfEmployees < 100", ACCOUNTS)) == ["Acme", None]
    assert names(matching("NumberOfEmployees >= 10", ACCOUNTS)) == ["Acme", "acme labs", None]
    assert names(matching("NumberOfEmployees > 10", ACCOUNTS)) == ["acme labs"]
    assert names(matching("NumberOfEmployees <= 10", ACCOUNTS)) == ["Acme", None]


def test_null_literals():
    assert names(matching("Name = null", ACCOUNTS)) == [None]
    assert names(matching("AnnualRevenue != null", ACCOUNTS)) == ["Acme", "Globex", None]
    assert matching("AnnualRevenue > null", ACCOUNTS) == []


def test_and_or_not_and_parentheses():
    assert names(
        matching("(Name = 'Acme' OR Name = 'Globex') AND NumberOfEmployees = 10", ACCOUNTS)
    ) == ["Acme"]
    assert names(matching("NOT Name LIKE 'a%'", ACCOUNTS)) == ["Globex", None]
    assert names(matching("NOT (Industry = null OR Name = null)", ACCOUNTS)) == ["Acme", "Globex"]


def test_boolean_and_number_literals_compare_by_value():
    contacts: list[Record] = [
        {"Id": "c1", "Name": "In", "HasOptedOutOfEmail": True},
        {"Id": "c2", "Name": "Out", "HasOptedOutOfEmail": False},
    ]
    assert names(matching("HasOptedOutOfEmail = true", contacts, "Contact")) == ["In"]
    assert names(matching("AnnualRevenue = 100", ACCOUNTS)) == ["Globex"]


def test_date_and_datetime_literals():
    opps: list[Record] = [
        {
            "Id": "o1",
            "Name": "Old",
            "CloseDate": date(2023, 12, 31),
            "CreatedDate": datetime(2023, 12, 31, 23, tzinfo=UTC),
        },
        {
            "Id": "o2",
            "Name": "New",
            "CloseDate": date(2024, 1, 1),
            "CreatedDate": datetime(2024, 1, 1, 0, tzinfo=UTC),
        },
    ]
    assert names(matching("CloseDate >= 2024-01-01", opps, "Opportunity")) == ["New"]
    assert names(matching("CreatedDate < 2024-01-01T00:00:00Z", opps, "Opportunity")) == ["Old"]
    assert names(matching("CreatedDate <= 2024-01-01T01:00:00+02:00", opps, "Opportunity")) == [
        "Old"
    ]


def test_relative_date_literals_cover_whole_utc_days():
    day = lambda y, m, d: datetime(y, m, d, tzinfo=UTC)  # noqa: E731
    assert relative_date_range(RelativeDate("TODAY"), NOW) == (day(2024, 5, 15), day(2024, 5, 16))
    assert relative_date_range(RelativeDate("YESTERDAY"), NOW) == (
        day(2024, 5, 14),
        day(2024, 5, 15),
    )
    assert relative_date_range(RelativeDate("LAST_N_DAYS", 7), NOW) == (
        day(2024, 5, 8),
        day(2024, 5, 16),
    )
    assert relative_date_range(RelativeDate("NEXT_N_DAYS", 2), NOW) == (
        day(2024, 5, 16),
        day(2024, 5, 18),
    )
    assert relative_date_range(RelativeDate("THIS_MONTH"), NOW) == (
        day(2024, 5, 1),
        day(2024, 6, 1),
    )
    assert relative_date_range(RelativeDate("LAST_MONTH"), NOW) == (
        day(2024, 4, 1),
        day(2024, 5, 1),
    )
    assert relative_date_range(RelativeDate("THIS_WEEK"), NOW) == (
        day(2024, 5, 12),
        day(2024, 5, 19),
    )
    assert relative_date_range(RelativeDate("THIS_YEAR"), NOW) == (day(2024, 1, 1), day(2025, 1, 1))
    records: list[Record] = [
        {"Id": "1", "Name": "today", "CreatedDate": NOW},
        {"Id": "2", "Name": "yesterday", "CreatedDate": day(2024, 5, 14)},
        {"Id": "3", "Name": "last week", "CreatedDate": day(2024, 5, 8)},
        {"Id": "4", "Name": "long ago", "CreatedDate": day(2023, 1, 1)},
        {"Id": "5", "Name": "tomorrow", "CreatedDate": day(2024, 5, 16)},
    ]
    assert names(matching("CreatedDate = TODAY", records)) == ["today"]
    assert names(matching("CreatedDate = YESTERDAY", records)) == ["yesterday"]
    assert names(matching("CreatedDate = LAST_N_DAYS:7", records)) == [
        "today",
        "yesterday",
        "last week",
    ]
    assert names(matching("CreatedDate < LAST_N_DAYS:7", records)) == ["long ago"]
    assert names(matching("CreatedDate > TODAY", records)) == ["tomorrow"]
    assert names(matching("CreatedDate <= TODAY", records)) == [
        "today",
        "yesterday",
        "last week",
        "long ago",
    ]
    assert names(matching("CreatedDate >= TODAY", records)) == ["today", "tomorrow"]
    assert names(matching("CreatedDate != THIS_MONTH", records)) == ["long ago"]
    assert names(matching("CreatedDate = NEXT_N_DAYS:1", records)) == ["tomorrow"]


def test_ids_match_in_15_and_18_character_forms():
    records: list[Record] = [{"Id": "0035g00000000W7AAI", "Name": "x", "AccountId": ACCOUNT_ID}]
    assert len(matching("Id = '0035g00000000W7'", records, "Contact")) == 1
    assert len(matching("AccountId = '0015g0000000001'", records, "Contact")) == 1


def test_parent_relationship_fields_filter_and_project():
    records: list[Record] = [
        {"Id": "0035g00000000W7AAI", "Name": "child", "AccountId": ACCOUNT_ID},
        {"Id": "0035g00000000W8AAI", "Name": "orphan", "AccountId": None},
    ]
    assert names(matching("Account.Name = 'parent co'", records, "Contact")) == ["child"]
    query = compile_("SELECT Name, Account.Name FROM Contact")
    assert query.project(records[0])["Account"] == {
        "attributes": {
            "type": "Account",
            "url": f"/services/data/v62.0/sobjects/Account/{ACCOUNT_ID}",
        },
        "Name": "Parent Co",
    }
    assert query.project(records[1])["Account"] is None
    assert query.fields[1].header == "Account.Name"


def test_schema_errors():
    with pytest.raises(InvalidType, match="sObject type 'Widget' is not supported"):
        compile_("SELECT Id FROM Widget")
    with pytest.raises(InvalidField, match="No such column 'Nope' on entity 'Account'"):
        compile_("SELECT Nope FROM Account")
    with pytest.raises(InvalidField, match="Didn't understand relationship 'Parent'"):
        compile_("SELECT Parent.Name FROM Account")
    with pytest.raises(InvalidField):
        compile_("SELECT Id FROM Contact WHERE Account.Nope = 'x'")


@pytest.mark.parametrize(
    "where",
    [
        "NumberOfEmployees = '10'",
        "Name = 10",
        "CreatedDate = 2024-01-01",
        "Name = TODAY",
        "NumberOfEmployees LIKE '1%'",
        "IsDeleted > true",
        "Name IN (1, 2)",
    ],
)
def test_literal_type_mismatches_are_malformed_queries(where):
    with pytest.raises(MalformedQuery):
        compile_(f"SELECT Id FROM Account WHERE {where}")


def test_order_by_puts_nulls_first_ascending_and_last_descending():
    ascending = compile_("SELECT Name FROM Account ORDER BY NumberOfEmployees, Name")
    descending = compile_("SELECT Name FROM Account ORDER BY NumberOfEmployees DESC, Name DESC")
    explicit = compile_("SELECT Name FROM Account ORDER BY Name NULLS LAST")
    assert ascending.sort_key
    assert descending.sort_key
    assert explicit.sort_key
    assert names(sorted(ACCOUNTS, key=ascending.sort_key)) == ["Globex", None, "Acme", "acme labs"]
    assert names(sorted(ACCOUNTS, key=descending.sort_key)) == ["acme labs", "Acme", None, "Globex"]
    assert names(sorted(ACCOUNTS, key=explicit.sort_key)) == ["Acme", "acme labs", "Globex", None]


# -- property: WHERE evaluation agrees with a reference evaluator ------------------------------

_STRINGS = st.one_of(st.none(), st.text(alphabet="abAB", max_size=3))
_NUMBERS = st.one_of(st.none(), st.integers(-3, 3))
_FIELDS = {"Name": _STRINGS, "NumberOfEmployees": _NUMBERS}
_OPS = ["=", "!=", "<", ">", "<=", ">="]


def _render(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return "'" + value + "'"
    return str(value)


def _like(value: str, pattern: str) -> bool:
    if not pattern:
        return not value
    head, rest = pattern[0], pattern[1:]
    if head == "%":
        return any(_like(value[i:], rest) for i in range(len(value) + 1))
    if not value:
        return False
    return (head == "_" or head.lower() == value[0].lower()) and _like(value[1:], rest)


def _norm(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _compare(actual: object, op: str, literal: object) -> bool:
    if literal is None:
        return {"=": actual is None, "!=": actual is not None}.get(op, False)
    if actual is None:
        return op == "!="
    a, b = _norm(actual), _norm(literal)
    return {"=": a == b, "!=": a != b, "<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]  # type: ignore[operator]


@st.composite
def _predicate(draw):
    field = draw(st.sampled_from(sorted(_FIELDS)))
    kind = draw(st.sampled_from(["cmp", "in", "like"] if field == "Name" else ["cmp", "in"]))
    if kind == "cmp":
        op = draw(st.sampled_from(_OPS))
        literal = draw(_FIELDS[field])
        return f"{field} {op} {_render(literal)}", lambda r: _compare(r.get(field), op, literal)
    if kind == "in":
        values = draw(
            st.lists(_FIELDS[field].filter(lambda v: v is not None), min_size=1, max_size=3)
        )
        negated = draw(st.booleans())
        text = f"{field} {'NOT IN' if negated else 'IN'} ({', '.join(_render(v) for v in values)})"
        wanted = {_norm(v) for v in values}
        return text, lambda r: (_norm(r.get(field)) in wanted) != negated
    pattern = draw(st.text(alphabet="ab%_", max_size=4))
    return (
        f"Name LIKE '{pattern}'",
        lambda r: isinstance(r.get("Name"), str) and _like(r["Name"], pattern),
    )


@st.composite
def _condition(draw, depth: int = 0):
    if depth >= 2 or draw(st.booleans()):
        return draw(_predicate())
    kind = draw(st.sampled_from(["and", "or", "not"]))
    if kind == "not":
        text, check = draw(_condition(depth + 1))
        return f"NOT ({text})", lambda r: not check(r)
    parts = draw(st.lists(_condition(depth + 1), min_size=2, max_size=3))
    joiner = " AND " if kind == "and" else " OR "
    text = joiner.join(f"({t})" for t, _ in parts)
    checks = [c for _, c in parts]
    combine = all if kind == "and" else any
    return text, lambda r: combine(c(r) for c in checks)


@settings(max_examples=300, deadline=None)
@given(
    _condition(),
    st.lists(st.fixed_dictionaries({"Name": _STRINGS, "NumberOfEmployees": _NUMBERS}), max_size=8),
)
def test_where_evaluation_agrees_with_a_reference_evaluator(condition, records):
    text, reference = condition
    rows = [{"Id": str(i), **r} for i, r in enumerate(records)]
    query = compile_(f"SELECT Id FROM Account WHERE {text}")
    assert query.matches is not None
    assert [query.matches(r) for r in rows] == [reference(r) for r in rows]

"""The SOQL tokenizer and parser: every construct, malformed text, and no crash on any input."""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.testing.salesforce.soql_ast import (
    And,
    Comparison,
    CountExpr,
    FieldRef,
    InList,
    Like,
    Literal,
    Not,
    Or,
    OrderItem,
    RelativeDate,
)
from connectors.testing.salesforce.soql_errors import (
    MalformedQuery,
    NumberOutsideValidRange,
    SoqlError,
)
from connectors.testing.salesforce.soql_parser import parse_soql, tokenize


def where(text: str):
    return parse_soql(f"SELECT Id FROM Account WHERE {text}").where


def test_select_list_with_parent_fields_and_counts():
    q = parse_soql("select Id, Account.Owner.Name from Contact")
    assert q.select == (FieldRef(("Id",)), FieldRef(("Account", "Owner", "Name")))
    assert q.sobject == "Contact"
    assert parse_soql("SELECT COUNT() FROM Lead").select == (CountExpr(None),)
    assert parse_soql("SELECT COUNT(Id) FROM Lead").select == (CountExpr(FieldRef(("Id",))),)


@pytest.mark.parametrize("op", ["=", "!=", "<", ">", "<=", ">="])
def test_comparison_operators(op):
    assert where(f"Amount {op} 5") == Comparison(FieldRef(("Amount",)), op, Literal(5))


def test_diamond_is_not_equal():
    assert where("Name <> 'a'") == Comparison(FieldRef(("Name",)), "!=", Literal("a"))


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("'it''s'", None),
        ("'a\\'b'", "a'b"),
        ("'tab\\there'", "tab\there"),
        ("'\\u00e9'", "é"),
        ("12", 12),
        ("-3.5", -3.5),
        ("TRUE", True),
        ("false", False),
        ("null", None),
        ("2024-01-31", date(2024, 1, 31)),
        ("2024-01-01T00:00:00Z", datetime(2024, 1, 1, tzinfo=UTC)),
        ("2024-01-01T02:00:00+02:00", datetime(2024, 1, 1, tzinfo=UTC)),
        ("2024-01-01T00:00:00.250Z", datetime(2024, 1, 1, 0, 0, 0, 250000, tzinfo=UTC)),
    ],
)
def test_literals(text, value):
    if text == "'it''s'":
        with pytest.raises(MalformedQuery):
            where(f"Name = {text}")
        return
    node = where(f"F = {text}")
    assert isinstance(node, Comparison)
    assert node.value == Literal(value)


def test_relative_date_literals():
    assert where("CreatedDate = TODAY").value == RelativeDate("TODAY")
    assert where("CreatedDate > LAST_N_DAYS:30").value == RelativeDate("LAST_N_DAYS", 30)
    assert where("CreatedDate < next_n_days:7").value == RelativeDate("NEXT_N_DAYS", 7)
    assert where("CreatedDate = THIS_MONTH").value == RelativeDate("THIS_MONTH")
    with pytest.raises(MalformedQuery):
        where("CreatedDate = LAST_N_DAYS")
    with pytest.raises(MalformedQuery):
        where("CreatedDate = LAST_N_DAYS:x")


def test_like_keeps_wildcards_apart_from_escaped_ones():
    node = where("Name LIKE 'a\\%b_%'")
    assert isinstance(node, Like)
    assert node.pattern == (
        ("literal", "a"),
        ("literal", "%"),
        ("literal", "b"),
        ("one", "_"),
        ("any", "%"),
    )
    with pytest.raises(MalformedQuery):
        where("Name = 'a\\%'")  # \\% is only legal in LIKE


def test_in_and_not_in():
    assert where("Id IN ('a', 'b')") == InList(FieldRef(("Id",)), (Literal("a"), Literal("b")))
    assert where("Amount NOT IN (1, 2)") == InList(
        FieldRef(("Amount",)), (Literal(1), Literal(2)), True
    )


def test_boolean_structure_and_parentheses():
    node = where("(A = 1 OR B = 2) AND NOT C = 3 AND D = null")
    assert isinstance(node, And)
    assert isinstance(node.operands[0], Or)
    assert isinstance(node.operands[1], Not)
    assert len(node.operands) == 3


def test_mixing_and_or_without_parentheses_is_rejected_like_salesforce():
    with pytest.raises(MalformedQuery, match="unexpected token: 'OR'"):
        where("A = 1 AND B = 2 OR C = 3")


def test_order_by_limit_offset():
    q = parse_soql("SELECT Id FROM Account ORDER BY Name DESC NULLS FIRST, Id LIMIT 10 OFFSET 20")
    assert q.order_by == (
        OrderItem(FieldRef(("Name",)), True, True),
        OrderItem(FieldRef(("Id",)), False, None),
    )
    assert q.order_by[0].effective_nulls_first is True
    assert q.order_by[1].effective_nulls_first is True
    assert OrderItem(FieldRef(("Id",)), True).effective_nulls_first is False
    assert (q.limit, q.offset) == (10, 20)
    with pytest.raises(NumberOutsideValidRange):
        parse_soql("SELECT Id FROM Account OFFSET 2001")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SELECT",
        "SELECT FROM Account",
        "SELECT Id Account",
        "SELECT Id FROM",
        "SELECT Id, FROM Account",
        "SELECT Id FROM Account WHERE",
        "SELECT Id FROM Account WHERE Name",
        "SELECT Id FROM Account WHERE Name = ",
        "SELECT Id FROM Account WHERE (Name = 'a'",
        "SELECT Id FROM Account WHERE Name = 'unterminated",
        "SELECT Id FROM Account LIMIT -1",
        "SELECT Id FROM Account LIMIT x",
        "SELECT Id FROM Account ORDER Name",
        "SELECT Id FROM Account WHERE Name LIKE 5",
        "SELECT Id FROM Account WHERE Id IN ()",
        "SELECT Id FROM Account extra",
        "SELECT Id, COUNT() FROM Account",
        "SELECT Id FROM Account WHERE d = 2024-13-40",
        "SELECT Id FROM Account WHERE Name = 'bad \\q escape'",
        "SELECT Id FROM Account WHERE Name = #",
    ],
)
def test_malformed_queries_raise_malformed_query_with_a_located_message(text):
    with pytest.raises(MalformedQuery) as info:
        parse_soql(text)
    assert "ERROR at Row:1:Column:" in info.value.message
    assert info.value.error_code == "MALFORMED_QUERY"


def test_error_message_points_at_the_offending_token():
    with pytest.raises(MalformedQuery) as info:
        parse_soql("SELECT Id FRM Account")
    assert (
        info.value.message
        == "\nSELECT Id FRM Account\n          ^\nERROR at Row:1:Column:11\nunexpected token: 'FRM'"
    )


def test_deep_nesting_is_a_parse_error_not_a_recursion_error():
    with pytest.raises(MalformedQuery):
        parse_soql("SELECT Id FROM A WHERE " + "(" * 500 + "x = 1" + ")" * 500)
    with pytest.raises(MalformedQuery):
        parse_soql("SELECT Id FROM A WHERE " + "NOT " * 500 + "x = 1")


def test_tokenizer_positions():
    tokens = tokenize("SELECT Id FROM A WHERE x >= 1")
    assert [(t.kind, t.text, t.pos) for t in tokens][-3:] == [
        ("op", ">=", 25),
        ("number", "1", 28),
        ("eof", "", 29),
    ]


_VOCAB = st.sampled_from(
    [
        "SELECT",
        "FROM",
        "WHERE",
        "AND",
        "OR",
        "NOT",
        "IN",
        "LIKE",
        "ORDER",
        "BY",
        "LIMIT",
        "OFFSET",
        "NULLS",
        "FIRST",
        "DESC",
        "COUNT",
        "TODAY",
        "LAST_N_DAYS",
        ":",
        "(",
        ")",
        ",",
        ".",
        "=",
        "!=",
        "<",
        ">=",
        "'x'",
        "'\\'",
        "12",
        "-1.5",
        "2024-01-01",
        "Name",
        "Id",
        "Account",
        "null",
        "true",
        "2024-01-01T00:00:00Z",
        "'%a_'",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_parser_raises_only_its_own_errors_on_arbitrary_text(text):
    with contextlib.suppress(SoqlError):
        parse_soql(text)


@settings(max_examples=500, deadline=None)
@given(st.lists(_VOCAB, max_size=25))
def test_parser_raises_only_its_own_errors_on_token_soup(words):
    with contextlib.suppress(SoqlError):
        parse_soql(" ".join(words))


@settings(max_examples=200, deadline=None)
@given(st.lists(_VOCAB, max_size=20))
def test_parser_raises_only_its_own_errors_after_a_valid_prefix(words):
    with contextlib.suppress(SoqlError):
        parse_soql("SELECT Id FROM Account WHERE " + " ".join(words))

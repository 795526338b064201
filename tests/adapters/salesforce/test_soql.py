"""SOQL parameter binding: escaping by Salesforce's rules, checked against the emulator's parser."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.adapters.salesforce.soql import (
    bind,
    contains,
    ends_with,
    escape_like,
    like,
    quote,
    starts_with,
)
from connectors.errors import InvalidRequest
from connectors.testing.salesforce.soql_ast import Comparison, InList, Like
from connectors.testing.salesforce.soql_parser import parse_soql


def _where(soql: str) -> object:
    return parse_soql(soql).where


@given(st.text())
def test_any_string_round_trips_through_binding_and_the_emulator_parser(value: str) -> None:
    where = _where(bind("SELECT Id FROM Contact WHERE Email = :v", v=value))
    assert isinstance(where, Comparison)
    assert where.value.value == value  # type: ignore[union-attr]


@given(st.lists(st.text(), min_size=1, max_size=5))
def test_lists_bind_as_in_lists_of_the_same_values(values: list[str]) -> None:
    where = _where(bind("SELECT Id FROM Contact WHERE Email IN :v", v=values))
    assert isinstance(where, InList)
    assert [lit.value for lit in where.values] == values


@given(st.text(), st.sampled_from(["prefix", "suffix", "contains"]))
def test_like_helpers_match_the_text_literally(text: str, kind: str) -> None:
    pattern = {"prefix": starts_with, "suffix": ends_with, "contains": contains}[kind](text)
    where = _where(bind("SELECT Id FROM Contact WHERE Name LIKE :p", p=pattern))
    assert isinstance(where, Like)
    literal = "".join(t for k, t in where.pattern if k == "literal")
    assert literal == text
    wildcards = [k for k, _ in where.pattern if k != "literal"]
    assert wildcards == {"prefix": ["any"], "suffix": ["any"], "contains": ["any", "any"]}[kind]


@given(st.text())
def test_escape_like_then_like_keeps_user_wildcards_literal(text: str) -> None:
    where = _where(
        bind("SELECT Id FROM Contact WHERE Name LIKE :p", p=like(escape_like(text) + "%"))
    )
    assert isinstance(where, Like)
    assert where.pattern[-1] == ("any", "%")
    assert "".join(t for k, t in where.pattern[:-1]) == text


def test_scalar_literals() -> None:
    assert quote(True) == "true"
    assert quote(False) == "false"
    assert quote(None) == "null"
    assert quote(42) == "42"
    assert quote(1.5) == "1.5"
    assert quote(Decimal("2.50")) == "2.50"
    assert quote(date(2024, 2, 29)) == "2024-02-29"
    eastern = timezone(timedelta(hours=-5))
    assert quote(datetime(2024, 1, 1, 7, 30, tzinfo=eastern)) == "2024-01-01T12:30:00Z"
    assert quote("a'b\\c\"\n\t") == "'a\\'b\\\\c\\\"\\n\\t'"
    assert like("50%_off").render() == "'50%_off'"


def test_bound_dates_parse_back_in_the_emulator() -> None:
    when = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    where = _where(bind("SELECT Id FROM Contact WHERE CreatedDate > :t", t=when))
    assert where.value.value == when  # type: ignore[union-attr]


def test_names_inside_string_literals_and_relative_dates_are_not_parameters() -> None:
    soql = "SELECT Id FROM Contact WHERE Name = ':x' AND CreatedDate = LAST_N_DAYS:7"
    assert bind(soql) == soql


@pytest.mark.parametrize(
    ("soql", "kwargs", "message"),
    [
        ("SELECT Id FROM Contact WHERE Email = :email", {}, ":email not bound"),
        ("SELECT Id FROM Contact", {"extra": 1}, "no such :parameter"),
        ("SELECT Id FROM Contact WHERE Name = 'open", {}, "unterminated"),
        ("SELECT Id FROM Contact WHERE Id IN :ids", {"ids": []}, "empty list"),
        ("SELECT Id FROM Contact WHERE X = :v", {"v": float("nan")}, "finite"),
        ("SELECT Id FROM Contact WHERE X = :v", {"v": datetime(2024, 1, 1)}, "naive"),
        ("SELECT Id FROM Contact WHERE X = :v", {"v": object()}, "no SOQL literal"),
    ],
)
def test_binding_errors_name_the_problem(
    soql: str, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidRequest) as info:
        bind(soql, **kwargs)
    assert message in str(info.value) or message in (info.value.hint or "")

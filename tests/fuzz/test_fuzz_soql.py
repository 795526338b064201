"""Fuzzing SOQL: the adapter's parameter binding and the emulator's parser.

Properties: binding never raises anything but :class:`~connectors.errors.InvalidRequest`; a bound
string (any text, quotes and backslashes included) comes back from the emulator's parser as
exactly the same value, in exactly one comparison (no injection can add a condition); the parser
raises nothing but :class:`SoqlError` on any text.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, date, datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from connectors.adapters.salesforce.soql import bind, contains, quote
from connectors.errors import InvalidRequest
from connectors.testing.salesforce.soql_ast import Comparison, InList, Like, Literal
from connectors.testing.salesforce.soql_errors import SoqlError
from connectors.testing.salesforce.soql_parser import parse_soql, tokenize

from ._support import fuzz

_SOQL_WORDS = st.sampled_from(
    [
        "SELECT", "Id", ",", "Name", "FROM", "Contact", "WHERE", "=", "!=", "<", ">=", "AND",
        "OR", "NOT", "(", ")", "IN", "LIKE", "'a'", "'it\\'s'", "null", "true", "12", "3.5",
        "2024-01-01", "2024-01-01T00:00:00Z", "TODAY", "LAST_N_DAYS:7", "ORDER", "BY", "ASC",
        "DESC", "NULLS", "FIRST", "LIMIT", "OFFSET", "COUNT()", "Account.Name", ":x", "'",
        "\\", "%", "_", "--", "\n", "'unterminated", "1e9999", "-", ".", "Owner.Email",
    ]
)  # fmt: skip
_SCALARS = st.one_of(
    st.text(),
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.dates(),
    st.datetimes(timezones=st.none() | st.just(UTC)),
)
_VALUES = st.one_of(
    _SCALARS,
    st.lists(_SCALARS, max_size=4),
    st.lists(st.lists(st.integers(), max_size=2), max_size=2),
    st.frozensets(st.integers(), max_size=3),
    st.text().map(contains),
    st.builds(object),
)


@fuzz
@given(value=st.text())
def test_a_bound_string_parses_back_to_the_same_single_value(value: str) -> None:
    soql = bind("SELECT Id FROM Contact WHERE Name = :v", v=value)
    query = parse_soql(soql)
    assert isinstance(query.where, Comparison)
    assert isinstance(query.where.value, Literal)
    assert query.where.value.value == value


@fuzz
@given(values=st.lists(st.text(), min_size=1, max_size=5))
def test_a_bound_list_parses_back_to_the_same_values(values: list[str]) -> None:
    query = parse_soql(bind("SELECT Id FROM Contact WHERE Name IN :v", v=values))
    assert isinstance(query.where, InList)
    assert [lit.value for lit in query.where.values] == values


@fuzz
@given(text=st.text())
def test_a_contains_pattern_matches_only_its_literal_text(text: str) -> None:
    query = parse_soql(bind("SELECT Id FROM Contact WHERE Name LIKE :p", p=contains(text)))
    assert isinstance(query.where, Like)
    literal = "".join(part for kind, part in query.where.pattern if kind == "literal")
    assert literal == text
    assert [kind for kind, _ in query.where.pattern].count("any") == 2 or text == ""


@fuzz
@given(template=st.text(), params=st.dictionaries(st.text(min_size=1, max_size=5), _VALUES))
def test_bind_raises_only_invalid_request(template: str, params: dict[str, object]) -> None:
    with contextlib.suppress(InvalidRequest):
        bind(template, params)


@fuzz
@given(value=_VALUES)
def test_quote_renders_or_refuses_with_invalid_request(value: object) -> None:
    try:
        rendered = quote(value)
    except InvalidRequest:
        return
    assert isinstance(rendered, str)
    assert rendered


@fuzz
@given(words=st.lists(_SOQL_WORDS, max_size=25), noise=st.text(max_size=20))
def test_the_emulator_parser_raises_only_soql_errors_on_soql_like_text(
    words: list[str], noise: str
) -> None:
    for query in (" ".join(words), " ".join(words) + noise):
        try:
            tokenize(query)
            parse_soql(query)
        except SoqlError:
            pass


@fuzz
@given(query=st.text())
def test_the_emulator_parser_raises_only_soql_errors_on_any_text(query: str) -> None:
    with contextlib.suppress(SoqlError):
        parse_soql(query)


def test_binding_examples_that_once_mattered() -> None:
    """Fixed regressions alongside the random search (quotes, backslashes, dates)."""
    assert bind("SELECT Id FROM Contact WHERE Name = :v", v="\\'") == (
        "SELECT Id FROM Contact WHERE Name = '\\\\\\''"
    )
    assert quote(date(2024, 1, 2)) == "2024-01-02"
    assert quote(datetime(2024, 1, 2, tzinfo=UTC)) == "2024-01-02T00:00:00Z"
    assert quote(Decimal("1.50")) == "1.50"

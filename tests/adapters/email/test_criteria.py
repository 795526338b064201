"""The search criteria builder: composition, rendering, and injection safety (property-based)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.adapters.email.criteria import Criteria, imap_date
from connectors.errors import InvalidRequest

ascii_values = st.text(
    alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=12
)
dates = st.dates(min_value=dt.date(1990, 1, 1), max_value=dt.date(2100, 12, 31))


def leaf(draw_value):
    return st.one_of(
        st.just(Criteria().unseen()),
        st.just(Criteria().flagged()),
        draw_value.map(lambda v: Criteria().from_(v)),
        draw_value.map(lambda v: Criteria().subject(v)),
        st.tuples(st.sampled_from(["X-Tag", "List-Id"]), draw_value).map(
            lambda p: Criteria().header(*p)
        ),
        dates.map(lambda d: Criteria().since(d)),
        st.integers(0, 10**9).map(lambda n: Criteria().larger(n)),
        st.integers(1, 10**6).map(lambda n: Criteria().uid_range(n)),
        st.sampled_from(["$Work", "\\Seen"]).map(lambda f: Criteria().keyword(f)),
    )


def trees(values):
    return st.recursive(
        leaf(values),
        lambda inner: st.one_of(
            st.tuples(inner, inner).map(lambda p: p[0] & p[1]),
            st.tuples(inner, inner).map(lambda p: p[0] | p[1]),
            inner.map(lambda c: ~c),
        ),
        max_leaves=8,
    )


def tokenize(data: bytes) -> list:
    """A small IMAP tokenizer: atoms, quoted strings and parenthesised lists."""
    stack: list[list] = [[]]
    i = 0
    while i < len(data):
        c = data[i : i + 1]
        if c == b" ":
            i += 1
        elif c == b"(":
            stack.append([])
            i += 1
        elif c == b")":
            group = stack.pop()
            stack[-1].append(group)
            i += 1
        elif c == b'"':
            i += 1
            out = bytearray()
            while data[i : i + 1] != b'"':
                if data[i : i + 1] == b"\\":
                    i += 1
                out += data[i : i + 1]
                i += 1
            i += 1
            stack[-1].append(("q", out.decode()))
        else:
            j = i
            while j < len(data) and data[j : j + 1] not in (b" ", b"(", b")"):
                j += 1
            stack[-1].append(data[i:j].decode())
            i = j
    assert len(stack) == 1, "unbalanced parentheses"
    return stack[0]


def expected(tokens: list) -> list:
    out: list = []
    for index, token in enumerate(tokens):
        if isinstance(token, list):
            out.append(expected(token))
        elif isinstance(token, dt.date):
            out.append(imap_date(token))
        elif isinstance(token, int):
            out.append(str(token))
        elif index > 0 and _is_value(tokens, index):
            out.append(("q", token))
        else:
            out.append(token)
    return out


def _is_value(tokens, index):
    arity = {"FROM": 1, "SUBJECT": 1, "HEADER": 2}
    pos = 0
    while pos < len(tokens):
        token = tokens[pos]
        n = arity.get(token, 0) if isinstance(token, str) else 0
        if token in ("KEYWORD", "UID", "SINCE", "LARGER"):
            n = 1
        if token == "OR":
            n = 2
        if token == "NOT":
            n = 1
        if pos < index <= pos + n:
            return token in arity
        pos += 1 + (n if token not in ("OR", "NOT") else 0)
    return False


@given(trees(ascii_values))
def test_ascii_criteria_render_to_a_parseable_query_with_every_value_quoted(criteria):
    query, charset = criteria.to_imap()
    assert charset is None
    assert isinstance(query, bytes)
    assert b"\r" not in query
    assert b"\n" not in query
    tokens, _ = criteria.render()
    assert tokenize(query) == expected(tokens)


@given(trees(ascii_values))
def test_not_and_or_keep_their_structure(criteria):
    negated, _ = (~criteria).render()
    assert negated[0] == "NOT"
    assert isinstance(negated[1], list)
    either, _ = (criteria | Criteria().seen()).render()
    assert either[0] == "OR"
    assert either[2] == ["SEEN"]


@given(st.text(max_size=8), st.sampled_from(["\r", "\n", "\x00", "\x7f"]), st.text(max_size=8))
def test_values_with_control_characters_are_refused(before, control, after):
    with pytest.raises(InvalidRequest):
        Criteria().subject(before + control + after)


def test_the_documented_example():
    criteria = Criteria().unseen().from_("x").since(dt.date(2026, 1, 5)).subject("y")
    assert criteria.to_imap() == (b'UNSEEN FROM "x" SINCE 05-Jan-2026 SUBJECT "y"', None)


def test_imap_specials_in_values_cannot_become_syntax():
    query, _ = Criteria().subject('a) OR (ALL "{5}').to_imap()
    assert query == b'SUBJECT "a) OR (ALL \\"{5}"'


def test_empty_criteria_mean_all():
    assert Criteria().to_imap() == (b"ALL", None)
    assert Criteria().render() == (["ALL"], None)


def test_non_ascii_values_switch_to_utf8_tokens_with_safe_groups():
    query, charset = (Criteria().subject("grüße") | Criteria().from_("a@b")).to_imap()
    assert charset == "UTF-8"
    assert query == [b"OR", b"(SUBJECT", "grüße".encode(), b"ALL)", b"(FROM", b"a@b", b"ALL)"]


def test_utf8_queries_refuse_specials_in_other_values():
    with pytest.raises(InvalidRequest, match="specials"):
        (Criteria().subject("grüße") & Criteria().from_("a b")).to_imap()


def test_any_of_all_of_and_not_compose():
    a, b, c = Criteria().seen(), Criteria().flagged(), Criteria().draft()
    assert Criteria.any_of(a, b, c) == (a | b) | c
    assert Criteria.all_of(a, b).render()[0] == ["SEEN", "FLAGGED"]
    assert a.not_(b).render()[0] == ["SEEN", "NOT", ["FLAGGED"]]


@pytest.mark.parametrize(
    "build",
    [
        lambda: Criteria().larger(-1),
        lambda: Criteria().uid_range(0),
        lambda: Criteria().keyword("has space"),
        lambda: Criteria().since("2026-01-01"),
        lambda: Criteria().header("Bad:Name", "v"),
        lambda: Criteria().from_(""),
        lambda: Criteria().uids([]),
    ],
)
def test_bad_terms_are_refused_when_added(build):
    with pytest.raises(InvalidRequest):
        build()


def test_uid_sets_render_as_atoms():
    assert Criteria().uids([5, 3, 3]).to_imap() == (b"UID 3,5", None)
    assert Criteria().uid_range(4, 9).to_imap() == (b"UID 4:9", None)

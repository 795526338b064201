"""The dotted response selector."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.adapters.http.selector import Selector

DOC = {"data": {"items": [{"id": 1}, {"id": 2}, {"x": 3}]}, "meta": {"next": "c2"}}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("meta.next", "c2"),
        ("data.items[*]", [{"id": 1}, {"id": 2}, {"x": 3}]),
        ("data.items[*].id", [1, 2]),
        ("data.items[-1].x", 3),
        ("data.items[9].id", None),
        ("missing.path", None),
        ("[*]", []),
    ],
)
def test_selectors_pick_values(text, expected):
    assert Selector.parse(text).select(DOC) == expected


@pytest.mark.parametrize("text", ["", ".a", "a..b", "a[x]", "a[*", "a b"])
def test_bad_selectors_are_value_errors(text):
    with pytest.raises(ValueError, match="selector"):
        Selector.parse(text)


@given(st.text(max_size=20))
def test_parsing_never_fails_otherwise(text):
    try:
        selector = Selector.parse(text)
    except ValueError:
        return
    selector.select(DOC)

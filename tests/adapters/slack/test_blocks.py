"""Message content limits, checked before any request."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.adapters.slack.blocks import MAX_BLOCKS, MAX_TEXT, check_message
from connectors.errors import InvalidRequest


def _fields(**kwargs):
    with pytest.raises(InvalidRequest) as info:
        check_message(**kwargs)
    return [f.field for f in info.value.fields]


def test_the_limits_themselves_are_accepted():
    check_message(text="x" * MAX_TEXT, blocks=[{"type": "divider"}] * MAX_BLOCKS)


def test_one_past_each_limit_names_the_field():
    assert _fields(text="x" * (MAX_TEXT + 1)) == ["text"]
    assert _fields(text="x", blocks=[{"type": "divider"}] * (MAX_BLOCKS + 1)) == ["blocks"]
    assert _fields(text="x", attachments=[{}] * 101) == ["attachments"]


def test_every_problem_is_reported_at_once():
    fields = _fields(text="x" * (MAX_TEXT + 1), blocks=[{"type": "divider"}] * 51)
    assert fields == ["text", "blocks"]


def test_blocks_must_be_objects_with_a_type():
    assert _fields(blocks=[{"type": "section"}, {"text": "no type"}]) == ["blocks[1]"]


def test_a_message_needs_some_content():
    assert _fields() == ["text"]
    assert _fields(text="") == ["text"]
    check_message(blocks=[{"type": "divider"}])
    check_message(attachments=[{"fallback": "x"}])


def test_markdown_text_has_its_own_limit_and_excludes_text():
    check_message(markdown_text="**hi**")
    assert _fields(markdown_text="x" * 12_001) == ["markdown_text"]
    assert _fields(markdown_text="x", text="y") == ["markdown_text"]


def test_the_error_says_the_message_was_not_sent():
    with pytest.raises(InvalidRequest) as info:
        check_message(text="x" * (MAX_TEXT + 1))
    assert "not sent" in str(info.value)
    assert info.value.provider_code == "msg_too_long"


@given(
    length=st.integers(min_value=1, max_value=MAX_TEXT + 50),
    blocks=st.integers(min_value=0, max_value=MAX_BLOCKS + 5),
)
def test_acceptance_is_exactly_the_documented_limits(length, blocks):
    ok = length <= MAX_TEXT and blocks <= MAX_BLOCKS
    try:
        check_message(text="x" * length, blocks=[{"type": "divider"}] * blocks or None)
    except InvalidRequest:
        assert not ok
    else:
        assert ok

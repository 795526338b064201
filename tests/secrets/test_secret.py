"""Secret: masked everywhere, refuses to be pickled or serialised, constant-time comparison."""

from __future__ import annotations

import copy
import json
import pickle

import pytest

from connectors.secrets.secret import MASK, Secret, live_secret_values

VALUE = "s3cr3t-value-for-secret-tests"


def test_repr_str_and_format_are_masked():
    secret = Secret(VALUE, name="slack/token")
    for text in (repr(secret), str(secret), f"{secret}", f"{secret:>40}", "%s" % secret):  # noqa: UP031
        assert VALUE not in text
    assert str(secret) == MASK
    assert repr(secret) == f"Secret(name='slack/token', value={MASK!r})"
    assert repr(Secret(VALUE)) == f"Secret({MASK!r})"


def test_reveal_is_the_only_way_to_the_value():
    assert Secret(VALUE).reveal() == VALUE
    assert Secret(Secret(VALUE)).reveal() == VALUE


def test_pickle_and_json_refuse_instead_of_leaking():
    secret = Secret(VALUE)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(secret)
    with pytest.raises(TypeError):
        json.dumps({"token": secret})


def test_copies_are_the_same_object():
    secret = Secret(VALUE)
    assert copy.copy(secret) is secret
    assert copy.deepcopy({"s": secret})["s"] is secret


def test_equality_compares_values_and_equals_compares_clear_text():
    assert Secret(VALUE) == Secret(VALUE)
    assert Secret(VALUE) != Secret(VALUE + "x")
    assert Secret(VALUE) != VALUE  # a Secret never equals a plain string
    assert Secret(VALUE).equals(VALUE)
    assert not Secret(VALUE).equals("other")
    assert hash(Secret("a")) == hash(Secret("b"))  # hash is no oracle


def test_truthiness_and_length():
    assert not Secret("")
    assert Secret("x")
    assert len(Secret("abcd")) == 4


def test_non_string_values_are_refused():
    with pytest.raises(TypeError, match="must be a str"):
        Secret(b"bytes")  # type: ignore[arg-type]


def test_live_values_are_known_for_redaction():
    secret = Secret(VALUE + "-live")
    assert VALUE + "-live" in set(live_secret_values())
    short = Secret("abc")  # too short to redact safely
    assert "abc" not in set(live_secret_values())
    del secret, short

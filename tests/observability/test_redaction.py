"""Redaction: registered values, token shapes and secret keys are masked everywhere."""

from __future__ import annotations

import gc
import json
import string
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from connectors.observability.redaction import (
    MASK,
    Redactor,
    default_redactor,
    is_secret_key,
    redact_text,
)
from connectors.secrets import Secret


def process(redactor: Redactor, **event: Any) -> dict[str, Any]:
    return dict(redactor(None, "info", dict(event)))


# --- token shapes ---------------------------------------------------------------------------------

SF_SESSION = "00Dx0000000BV7z!AR8AQAxo9UfVkh8AlV0Gomt9Czx9LjHnSSpwBMmbRcgKFmxOtvxjTrKW19ye6PE3"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyQGV4YW1wbGUuY29tIn0.c2lnbmF0dXJlLWJ5dGVz"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.DEF-123_x", f"Authorization: Bearer {MASK}"),
        ("sent bearer abc123== upstream", f"sent bearer {MASK} upstream"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", f"Authorization: Basic {MASK}"),
        ("header Basic dXNlcjpwYXNzd29yZA==", f"header Basic {MASK}"),
        ("authorization=Token abcdef123", f"authorization=Token {MASK}"),
        ("token xoxb-1234-5678-AbCdEf used", f"token {MASK} used"),
        ("xoxp-1-2-3-abc", MASK),
        ("refresh xoxe.xoxp-1-Mi0yLTM0NTY", f"refresh {MASK}"),
        ("refresh xoxe-1-My0xLTM0NTY", f"refresh {MASK}"),
        (f"sid={SF_SESSION}", f"sid={MASK}"),
        (f"session {SF_SESSION} expired", f"session {MASK} expired"),
        ("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", MASK),
        (f"id_token {JWT}", f"id_token {MASK}"),
        ("postgresql://app:s3cr3t-pw@db:5432/x", f"postgresql://app:{MASK}@db:5432/x"),
        ("password=hunter2 user=bob", f"password={MASK} user=bob"),
        ("token=abc&page=2", f"token={MASK}&page=2"),
        ("https://h/cb?code=1&access_token=abc123", f"https://h/cb?code=1&access_token={MASK}"),
        ("client_secret: 'sh h'", f"client_secret: '{MASK}'"),
        ('{"refresh_token": "r 1", "x": 1}', f'{{"refresh_token": "{MASK}", "x": 1}}'),
        ("API_KEY=abcd1234", f"API_KEY={MASK}"),
        ("secret=xyz", f"secret={MASK}"),
    ],
)
def test_token_shapes_are_masked(text: str, expected: str) -> None:
    assert Redactor(sources=()).redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Basic authentication failed",
        "secret_name=salesforce/client_secret",
        "token_type: bearer",
        "status=500 attempts=3",
        "created Lead 00Q5e000001AbCd",
        "see https://example.com/path?page=2",
        "abc",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert Redactor(sources=()).redact_text(text) == text


# --- registered values ----------------------------------------------------------------------------


def test_live_secret_values_are_masked_by_default() -> None:
    secret = Secret("live-value-1234", name="t")
    assert redact_text("provider echoed live-value-1234!") == f"provider echoed {MASK}!"
    assert default_redactor().redact_text("live-value-1234") == MASK
    del secret


def test_explicit_values_can_be_added_and_discarded() -> None:
    r = Redactor(sources=())
    r.add("plain-value-99")
    assert r.redact_text("x plain-value-99 y") == f"x {MASK} y"
    r.discard("plain-value-99")
    assert r.redact_text("x plain-value-99 y") == "x plain-value-99 y"


def test_sources_are_consulted_on_every_event() -> None:
    values: list[str] = []
    r = Redactor(sources=[lambda: values])
    assert r.redact_text("rotating-9876") == "rotating-9876"
    values.append("rotating-9876")
    assert r.redact_text("rotating-9876") == MASK


def test_values_shorter_than_four_are_not_masked() -> None:
    r = Redactor(sources=(), secrets=["abc"])
    assert r.redact_text("abcabc") == "abcabc"


def test_longest_value_wins_and_regex_characters_are_literal() -> None:
    r = Redactor(sources=(), secrets=["a.b*c", "a.b*c(d)+e"])
    assert r.redact_text("x a.b*c(d)+e y a.b*c z aXbbc") == f"x {MASK} y {MASK} z aXbbc"


def test_a_value_made_of_mask_characters_cannot_reform_next_to_a_mask() -> None:
    r = Redactor(sources=(), secrets=["*****x", "*****xy"])
    out = r.redact_text("*****xy*****x")
    assert "*****x" not in out.replace(MASK, "")
    assert "x" not in out


def test_add_source_and_secret_objects_in_add() -> None:
    r = Redactor(sources=())
    found = ["from-source-1"]
    r.add_source(lambda: found)
    r.add(Secret("from-secret-obj"))
    assert r.redact_text("from-source-1 from-secret-obj") == f"{MASK} {MASK}"


# --- structures -----------------------------------------------------------------------------------


def test_every_nested_field_is_redacted() -> None:
    r = Redactor(sources=(), secrets=["nested-hidden-1"])
    out = process(
        r,
        event="got nested-hidden-1",
        a={"b": ["x", ("nested-hidden-1", 3)], "c": {"d": {"nested-hidden-1"}}},
        err=ValueError("nested-hidden-1 in error"),
        raw=b"nested-hidden-1",
        obj=object(),
    )
    rendered = json.dumps(out, default=str)
    assert "nested-hidden-1" not in rendered
    assert out["a"]["b"][1] == (MASK, 3)
    assert out["err"] == f"ValueError: {MASK} in error"


def test_secret_keys_mask_the_whole_value_at_any_depth() -> None:
    r = Redactor(sources=())
    out = process(
        r,
        password="pw",
        headers={"Authorization": "xyz", "X-Api-Key": "k", "Cookie": "a=b", "Accept": "json"},
        nested=[{"clientSecret": {"deep": 1}}],
        empty_token="",
        missing_secret=None,
        secret_name="salesforce/client_secret",
        token_type="Bearer",
    )
    assert out["password"] == MASK
    assert out["headers"] == {
        "Authorization": MASK,
        "X-Api-Key": MASK,
        "Cookie": MASK,
        "Accept": "json",
    }
    assert out["nested"] == [{"clientSecret": MASK}]
    assert out["empty_token"] == ""
    assert out["missing_secret"] is None
    assert out["secret_name"] == "salesforce/client_secret"
    assert out["token_type"] == "Bearer"


def test_header_pairs_with_secret_names_are_masked() -> None:
    out = process(Redactor(sources=()), headers=[("authorization", "opaque"), ("accept", "x")])
    assert out["headers"] == [("authorization", MASK), ("accept", "x")]


def test_secret_objects_show_the_mask() -> None:
    out = process(Redactor(sources=()), value=Secret("shown-nowhere-1"), items=[Secret("zzzz")])
    assert out == {"value": MASK, "items": [MASK]}


def test_dict_keys_are_redacted_too() -> None:
    out = process(Redactor(sources=(), secrets=["zz-hidden-77"]), data={"zz-hidden-77": 1})
    assert out["data"] == {MASK: 1}


def test_exc_info_is_rendered_then_redacted() -> None:
    r = Redactor(sources=(), secrets=["in-traceback-42"])
    try:
        raise RuntimeError("failed with in-traceback-42")
    except RuntimeError as exc:
        out = process(r, event="boom", exc_info=exc)
    assert "exc_info" not in out
    assert "RuntimeError" in out["exception"]
    assert "in-traceback-42" not in out["exception"]


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("password", True),
        ("db_password", True),
        ("client_secret", True),
        ("refresh_token", True),
        ("accessToken", True),
        ("X-Api-Key", True),
        ("authorization", True),
        ("Set-Cookie", True),
        ("private_key", True),
        ("tenant", False),
        ("request_id", False),
        ("secret_name", False),
        ("token_type", False),
    ],
)
def test_is_secret_key(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


# --- property: a registered secret never reaches the rendered output ---------------------------

secrets_st = st.text(alphabet=string.printable, min_size=8, max_size=40).filter(
    lambda s: s.strip("*") != ""
)
leaf_st = st.one_of(st.none(), st.integers(), st.booleans(), st.text(max_size=20))
key_st = st.text(alphabet=string.ascii_letters + "_", min_size=1, max_size=10)


def events(secret: str) -> st.SearchStrategy[dict[str, Any]]:
    """Nested events where the secret appears inside strings, keys, lists and exceptions."""
    embedded = st.builds(lambda a, b: a + secret + b, st.text(max_size=10), st.text(max_size=10))
    leaves = st.one_of(leaf_st, embedded, embedded.map(ValueError), embedded.map(lambda s: (s,)))
    tree = st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.dictionaries(st.one_of(key_st, embedded), children, max_size=3),
        ),
        max_leaves=8,
    )
    return st.dictionaries(key_st, tree, min_size=1, max_size=4).map(
        lambda d: {"event": "e", "planted": secret, **d}
    )


def neutralise(value: Any, secret: str) -> Any:
    """The same structure with every occurrence of ``secret`` replaced by a placeholder."""
    if isinstance(value, str):
        return value.replace(secret, "N")
    if isinstance(value, BaseException):
        return type(value)(neutralise(str(value), secret))
    if isinstance(value, dict):
        return {neutralise(k, secret): neutralise(v, secret) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(neutralise(v, secret) for v in value)
    return value


def render(redactor: Redactor, event: dict[str, Any]) -> str:
    return json.dumps(redactor(None, "info", dict(event)), default=str, ensure_ascii=False)


@settings(max_examples=100, deadline=None)
@given(st.data(), secrets_st)
def test_registered_secret_never_appears_in_rendered_output(
    data: st.DataObject, secret: str
) -> None:
    event = data.draw(events(secret))
    rendered = render(Redactor(sources=(), secrets=[secret]), event)
    # The property only makes sense when the output would not contain the value anyway
    # (e.g. a "secret" that is a piece of JSON syntax or of the mask itself).
    assume(secret not in render(Redactor(sources=()), neutralise(event, secret)))
    assert secret not in rendered


@settings(max_examples=40, deadline=None)
@given(secrets_st, st.text(max_size=30), st.text(max_size=30))
def test_live_secret_never_appears_in_redacted_text(secret: str, before: str, after: str) -> None:
    live = Secret(secret)
    text = before + secret + after
    assume(secret not in Redactor(sources=()).redact_text(before + "\x00" + after))
    assert secret not in redact_text(text)
    del live


def test_a_live_secret_stays_redacted_when_an_equal_one_dies() -> None:
    first = Secret("equal-value-123")
    second = Secret("equal-value-123")
    del first
    gc.collect()
    assert redact_text("equal-value-123") == MASK
    del second

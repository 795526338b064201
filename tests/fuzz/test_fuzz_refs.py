"""Fuzzing ``${...}`` references and their substitution.

Properties: :func:`parse_ref` and :func:`find_refs` raise nothing but
:class:`~connectors.secrets.refs.MalformedReference` (a ``DefinitionError``); text without ``${``
passes substitution unchanged; a resolved reference never leaves the value visible through
``str``/``repr`` of the result (it stays a :class:`Secret`); every rejection is a
:class:`~connectors.errors.ConnectorError`.
"""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from connectors.errors import ConnectorError
from connectors.secrets.refs import MalformedReference, find_refs, parse_ref, unescape
from connectors.secrets.resolvers import ResolverRegistry
from connectors.secrets.secret import Secret
from connectors.secrets.substitute import resolve_values

from ._support import fuzz

_CANARY = "fuzz-canary-5e1f0a"
_ENV = {"TOKEN": _CANARY, "OTHER": "plain-value"}
_PIECES = st.sampled_from(
    [
        "${", "}", "$${", "$", "env:", "secret:", "file:", "vault:", "aws-sm:", "tenant.id",
        "TOKEN", "OTHER", "MISSING", "#", "field", "/", ":", "a", " ", "${env:TOKEN}",
        "${env:OTHER}", "${tenant.id}", "${secret:x#y}", "${nope:x}", "${}", "\\", "\n",
    ]
)  # fmt: skip
_REF_TEXT = st.one_of(st.text(), st.lists(_PIECES, max_size=12).map("".join))


def _registry() -> ResolverRegistry:
    return ResolverRegistry.with_builtins(environ=_ENV, discover=False)


@fuzz
@given(text=_REF_TEXT)
def test_parse_ref_raises_only_malformed_reference(text: str) -> None:
    try:
        ref = parse_ref(text)
    except MalformedReference:
        return
    assert ref.text.startswith("${")


@fuzz
@given(text=_REF_TEXT)
def test_find_refs_raises_only_malformed_reference_and_offsets_are_exact(text: str) -> None:
    try:
        matches = find_refs(text)
    except MalformedReference as exc:
        assert 0 <= exc.offset <= len(text)  # type: ignore[attr-defined]  # noqa: PT017 - rejections are typed, then inspected
        return
    for match in matches:
        assert text[match.start : match.start + 2] == "${"
        assert text[match.end - 1] == "}"


@fuzz
@given(text=st.text().filter(lambda t: "${" not in t))
def test_text_without_references_is_unchanged(text: str) -> None:
    assert asyncio.run(resolve_values(text, _registry(), tenant="acme")) == text
    assert unescape(text) == text


@fuzz
@given(
    value=st.recursive(
        _REF_TEXT | st.integers() | st.none(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
        max_leaves=8,
    )
)
def test_substitution_raises_only_typed_errors_and_keeps_secrets_masked(value: object) -> None:
    try:
        resolved = asyncio.run(resolve_values(value, _registry(), tenant="acme"))
    except ConnectorError as exc:
        assert _CANARY not in str(exc)  # noqa: PT017 - rejections are typed, then inspected
        assert _CANARY not in repr(exc)  # noqa: PT017 - rejections are typed, then inspected
        return
    assert _CANARY not in repr(resolved)
    assert _CANARY not in str(resolved)
    _assert_secrets_wrapped(resolved)


def _assert_secrets_wrapped(value: object) -> None:
    if isinstance(value, str):
        assert _CANARY not in value
    elif isinstance(value, dict):
        for item in value.values():
            _assert_secrets_wrapped(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _assert_secrets_wrapped(item)
    elif isinstance(value, Secret):
        assert _CANARY not in f"{value}{value!r}"


def test_a_reference_resolves_to_a_secret_and_an_escape_stays_literal() -> None:
    out = asyncio.run(resolve_values("x-${env:TOKEN}-$${env:TOKEN}", _registry(), tenant="a"))
    assert isinstance(out, Secret)
    assert out.reveal() == f"x-{_CANARY}-${{env:TOKEN}}"

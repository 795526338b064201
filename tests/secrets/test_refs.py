"""SecretRef parsing and finding: strict syntax, typed errors with offsets, round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.errors import DefinitionError
from connectors.secrets.refs import (
    MalformedReference,
    SecretRef,
    find_refs,
    parse_ref,
    secret_refs,
    unescape,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${env:SLACK_TOKEN}", SecretRef("env", "SLACK_TOKEN")),
        ("${file:/run/secrets/sf key}", SecretRef("file", "/run/secrets/sf key")),
        ("${file:relative/path.txt}", SecretRef("file", "relative/path.txt")),
        ("${secret:salesforce}", SecretRef("secret", "salesforce")),
        ("${secret:salesforce#client_secret}", SecretRef("secret", "salesforce", "client_secret")),
        ("${secret:teams/sf.prod#x}", SecretRef("secret", "teams/sf.prod", "x")),
        ("${vault:connectors/slack#token}", SecretRef("vault", "connectors/slack", "token")),
        ("${aws-sm:prod/slack#token}", SecretRef("aws-sm", "prod/slack", "token")),
        ("${aws-sm:prod/slack}", SecretRef("aws-sm", "prod/slack")),
        (
            "${aws-sm:arn:aws:secretsmanager:eu-west-1:1:secret:x#k}",
            SecretRef("aws-sm", "arn:aws:secretsmanager:eu-west-1:1:secret:x", "k"),
        ),
        ("${tenant.id}", SecretRef("tenant", "id")),
        ("${onepassword:vault/item#field}", SecretRef("onepassword", "vault/item", "field")),
        ("${x9-y:anything goes here}", SecretRef("x9-y", "anything goes here")),
    ],
)
def test_valid_references_parse(text, expected):
    ref = parse_ref(text)
    assert ref == expected
    assert ref.text == text
    assert str(ref) == text


def test_tenant_id_is_a_context_reference_and_secrets_are_not():
    assert parse_ref("${tenant.id}").is_context
    assert not parse_ref("${secret:tenant}").is_context


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("${}", "it is empty"),
        ("${ env:X}", "spaces"),
        ("${env:X }", "spaces"),
        ("${Env:X}", "scheme 'Env'"),
        ("${1env:X}", "scheme '1env'"),
        ("${env_x:X}", "scheme 'env_x'"),
        ("${env:}", "names nothing"),
        ("${env:1BAD}", "environment variable name"),
        ("${env:X#field}", "take no #field"),
        ("${file:/a#b}", "take no #field"),
        ("${vault:connectors/slack}", "need a #KEY"),
        ("${secret:a b}", "credential name"),
        ("${secret:../other}", "credential name"),
        ("${secret:x#}", "#field is empty"),
        ("${secret:x#a#b}", "#field"),
        ("${tenant.name}", "context reference"),
        ("${tenant:id}", "reserved for context"),
        ("${env:${env:X}}", "more than one reference"),
        ("${secret:a\nb}", "control character"),
        ("env:X", "is not a reference"),
        ("${env:X", "is not a reference"),
    ],
)
def test_malformed_references_raise_a_definition_error_with_a_reason(text, fragment):
    with pytest.raises(MalformedReference) as info:
        parse_ref(text)
    assert isinstance(info.value, DefinitionError)
    assert fragment in str(info.value)


def test_malformed_reference_has_a_hint():
    with pytest.raises(MalformedReference) as info:
        parse_ref("${vault:x}")
    assert info.value.hint == "write ${vault:x#KEY}"


def test_find_refs_reports_offsets():
    text = "url: https://${env:HOST}/x?key=${secret:api#key} tenant=${tenant.id}"
    found = find_refs(text)
    assert [text[m.start : m.end] for m in found] == [
        "${env:HOST}",
        "${secret:api#key}",
        "${tenant.id}",
    ]
    assert [m.ref for m in found] == [
        SecretRef("env", "HOST"),
        SecretRef("secret", "api", "key"),
        SecretRef("tenant", "id"),
    ]


def test_find_refs_skips_escapes():
    text = "literal $${env:NOT} and $$${env:ALSO_NOT} then ${env:YES}"
    found = find_refs(text)
    assert [m.ref.path for m in found] == ["YES"]
    assert unescape("literal $${env:NOT}") == "literal ${env:NOT}"


def test_find_refs_error_carries_the_offset_of_the_bad_reference():
    text = "ok ${env:A} then ${bad scheme:x}"
    with pytest.raises(MalformedReference) as info:
        find_refs(text)
    assert info.value.offset == text.index("${bad")
    with pytest.raises(MalformedReference) as info:
        find_refs("abc ${env:UNCLOSED")
    assert info.value.offset == 4
    assert "unterminated" in info.value.reason


def test_long_malformed_text_is_excerpted_not_echoed():
    pasted = "x" * 200
    with pytest.raises(MalformedReference) as info:
        parse_ref("${" + pasted + "}")
    assert pasted not in str(info.value)


# --- properties ----------------------------------------------------------------------------------

_alnum = st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
_name_rest = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.-/", max_size=30)
_field = st.builds(
    lambda head, rest: head + rest,
    _alnum,
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_.-", max_size=20),
)
_free_path = st.text(
    alphabet=st.characters(
        blacklist_categories=("Cc", "Cs", "Zl", "Zp"), blacklist_characters="${}#"
    ),
    min_size=1,
    max_size=40,
).filter(lambda s: s == s.strip())

_refs = st.one_of(
    st.builds(
        SecretRef,
        st.just("env"),
        st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,20}", fullmatch=True),
    ),
    st.builds(SecretRef, st.just("file"), _free_path),
    st.builds(
        SecretRef,
        st.just("secret"),
        st.builds(lambda h, r: h + r, _alnum, _name_rest),
        st.none() | _field,
    ),
    st.builds(SecretRef, st.just("vault"), _free_path, _field),
    st.builds(SecretRef, st.just("aws-sm"), _free_path, st.none() | _field),
    st.builds(
        SecretRef,
        st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True).filter(
            lambda s: s not in {"env", "file", "secret", "vault", "aws-sm", "tenant"}
        ),
        _free_path,
        st.none() | _field,
    ),
    st.just(SecretRef("tenant", "id")),
)


@given(_refs)
def test_text_of_a_reference_parses_back_to_it(ref):
    assert parse_ref(ref.text) == ref


@given(st.lists(st.tuples(st.text(alphabet="ab $x{}", max_size=8), _refs), max_size=5))
def test_find_refs_finds_every_embedded_reference_at_its_offset(parts):
    # Plain text between references: no "${" and no "$" right before a reference.
    text = ""
    expected = []
    for plain, ref in parts:
        plain = plain.replace("$", "")
        text += plain
        expected.append((len(text), ref))
        text += ref.text
    found = find_refs(text)
    assert [(m.start, m.ref) for m in found] == expected
    for m in found:
        assert text[m.start : m.end] == m.ref.text


@given(st.text(max_size=200))
def test_arbitrary_text_never_raises_anything_but_malformed_reference(text):
    try:
        found = find_refs(text)
    except MalformedReference as exc:
        offset = exc.offset
        assert 0 <= offset <= len(text)
        return
    for m in found:
        assert text[m.start : m.end] == m.ref.text


@given(st.text(max_size=60))
def test_parse_ref_on_arbitrary_text_is_a_reference_or_a_typed_error(text):
    try:
        ref = parse_ref(text)
    except MalformedReference:
        return
    assert parse_ref(ref.text) == ref


@given(st.text(alphabet="${}abc:#.", max_size=40))
def test_reference_shaped_noise_never_crashes(text):
    try:
        find_refs(text)
        parse_ref(text)
    except MalformedReference:
        pass


def test_secret_refs_lists_store_references_in_nested_settings_in_order():
    settings = {
        "url": "https://x/${env:HOME}",
        "auth": [{"key": "${secret:b#f}"}, ("${secret:a}",)],
        "broken": "${secret:",
        "n": 3,
    }
    assert secret_refs(settings) == [("b", "f", "${secret:b#f}"), ("a", None, "${secret:a}")]

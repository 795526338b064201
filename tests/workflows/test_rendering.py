"""Sandboxed rendering: strict undefined, native values, secrets never in text."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.secrets import Secret
from connectors.workflows.rendering import TemplateError, check_template, evaluate, render

SECRET = Secret("s3cr3t-value-xyz", name="api_key")


def test_a_whole_expression_keeps_its_type():
    scope = {"inputs": {"n": 3, "names": ["a", "b"]}}
    assert render("{{ inputs.n }}", scope) == 3
    assert render("{{ inputs.names }}", scope) == ["a", "b"]
    assert render({"x": ["{{ inputs.n + 1 }}"]}, scope) == {"x": [4]}
    assert render("n={{ inputs.n }}", scope) == "n=3"


def test_a_secret_passes_through_only_as_a_whole_value():
    scope = {"inputs": {"key": SECRET}}
    assert render("{{ inputs.key }}", scope) is SECRET
    with pytest.raises(TemplateError, match=r"secret \(api_key\) cannot be written into text"):
        render("Bearer {{ inputs.key }}", scope)


@pytest.mark.parametrize(
    "template",
    [
        "{{ inputs.key.reveal() }}",
        "{{ inputs.key._Secret__value }}",
        "x{{ inputs.key.reveal() }}",
        "{{ inputs.key.__class__ }}",
        "{% for c in inputs.key.reveal() %}{{ c }}{% endfor %}",
    ],
)
def test_a_template_cannot_reach_a_secrets_value(template):
    scope = {"inputs": {"key": SECRET}}
    with pytest.raises(TemplateError) as info:
        render(template, scope)
    assert "s3cr3t" not in str(info.value)


@given(st.text(max_size=40))
def test_no_rendered_text_ever_contains_the_secret(prefix):
    scope = {"inputs": {"key": SECRET, "items": [SECRET, "x"]}}
    for template in (f"{prefix}{{{{ inputs.items }}}}", f"{prefix}{{{{ inputs.key | string }}}}"):
        try:
            out = render(template, scope)
        except TemplateError:
            continue
        assert "s3cr3t-value-xyz" not in str(out)


def test_undefined_names_are_errors_not_empty_strings():
    with pytest.raises(TemplateError, match=r"UndefinedError: .* has no attribute 'nme'"):
        render("hello {{ inputs.nme }}", {"inputs": {"name": "x"}})


def test_the_sandbox_refuses_unsafe_attribute_access():
    with pytest.raises(TemplateError, match=r"SecurityError|unsafe"):
        render("{{ ''.__class__.__mro__ }}", {})


def test_conditions_accept_bare_or_braced_expressions():
    scope = {"item": {"email": "a@b.c"}}
    assert evaluate("{{ item.email }}", scope)
    assert not evaluate("item.email is none", scope)


def test_syntax_errors_are_found_without_rendering():
    assert check_template("{{ a.b }}") is None
    assert check_template("{{ a. }}") is not None
    assert check_template("{% if %}") is not None
    assert check_template("plain") is None

"""Fuzzing YAML definitions and workflows (``connectors.config.loader``,
``connectors.workflows.loading``).

Three kinds of input: arbitrary text; YAML documents built from random data (valid YAML, wrong
shapes); and the shipped templates with random edits (a character inserted, deleted or replaced,
a line dropped or duplicated). Property: loading either succeeds or raises a
:class:`~connectors.errors.DefinitionError` (every problem typed, with a location), never anything
else.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import given
from hypothesis import strategies as st

from connectors.config.loader import parse_definition
from connectors.errors import DefinitionError
from connectors.workflows.loading import parse_workflow

from ._support import fuzz

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = sorted((ROOT / "templates" / "connectors").glob("*.yaml"))
WORKFLOWS = sorted((ROOT / "templates" / "workflows").glob("*.yaml"))
_TEXTS = {p.name: p.read_text(encoding="utf-8") for p in [*DEFINITIONS, *WORKFLOWS]}

_KEYS = st.sampled_from(
    [
        "type", "version", "schema_version", "settings", "auth", "resilience", "retry",
        "max_attempts", "circuit_breaker", "rate_limits", "scopes", "operations", "steps", "id",
        "use", "with", "for_each", "when", "on_error", "connectors", "inputs", "requires",
        "definition", "name", "base_url", "timeout_ms", "deadline_ms", "paginate", "x",
    ]
)  # fmt: skip
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.text(max_size=30),
    st.sampled_from(
        ["salesforce", "slack@^1.0", "http", "${secret:x}", "${env:", "{{ inputs.x }}",
         "{{ steps.a.output | length }}", "{% for %}", "1.0.0", "^1.0", "crm.query", "continue"]
    ),
)  # fmt: skip
_DATA = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(_KEYS | st.text(max_size=6), inner, max_size=6)
    ),
    max_leaves=25,
)


def _load_both(text: str) -> None:
    for load in (parse_definition, parse_workflow):
        try:
            load(text, file="fuzz.yaml")
        except DefinitionError as exc:
            assert str(exc)  # noqa: PT017 - rejections are typed, then inspected


@fuzz
@given(text=st.text(max_size=400))
def test_arbitrary_text_loads_or_raises_a_definition_error(text: str) -> None:
    _load_both(text)


@fuzz
@given(data=_DATA)
def test_random_yaml_documents_load_or_raise_a_definition_error(data: object) -> None:
    _load_both(yaml.safe_dump(data, allow_unicode=True))


_SYNTAX = st.sampled_from([":", "-", "{", "}", " ", "\t", "'", '"', "${", "\n  "])


@st.composite
def _mutated_template(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(sorted(_TEXTS.values())))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["insert", "delete", "replace", "drop_line", "dup_line"]))
        lines = text.splitlines(keepends=True)
        if kind in ("drop_line", "dup_line") and lines:
            n = draw(st.integers(0, len(lines) - 1))
            if kind == "drop_line":
                del lines[n]
            else:
                lines.insert(n, lines[n])
            text = "".join(lines)
            continue
        pos = draw(st.integers(0, len(text)))
        piece = draw(st.text(min_size=1, max_size=3) | _SYNTAX)
        if kind == "insert":
            text = text[:pos] + piece + text[pos:]
        elif kind == "delete":
            text = text[:pos] + text[pos + len(piece) :]
        else:
            text = text[:pos] + piece + text[pos + len(piece) :]
    return text


@fuzz
@given(text=_mutated_template())
def test_edited_templates_load_or_raise_a_definition_error(text: str) -> None:
    _load_both(text)


def test_every_shipped_template_loads() -> None:
    for path in DEFINITIONS:
        parse_definition(_TEXTS[path.name], file=str(path))
    for path in WORKFLOWS:
        parse_workflow(_TEXTS[path.name], file=str(path))

"""The YAML loader: located, actionable errors; migrations; config files; never a crash."""

from __future__ import annotations

import contextlib

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.config.loader import (
    DefinitionErrors,
    load_config,
    load_definition_file,
    load_directory,
    parse_definition,
    parse_document,
    upgrade_text,
)
from connectors.errors import DefinitionError
from connectors.workflows import parse_workflow

#: (case, document, the exact message: file:line:col, what is wrong, and a hint).
MALFORMED = [
    (
        "unknown_top_key",
        "type: echo\nsetings: {}\n",
        ("def.yaml:2:1: unknown key 'setings' in (top level) Hint: did you mean 'settings'?"),
    ),
    (
        "unknown_nested_key",
        "type: echo\nresilience:\n  retry:\n    max_attemps: 3\n",
        (
            "def.yaml:4:5: unknown key 'max_attemps' in resilience.retry Hint"
            ": did you mean 'max_attempts'?"
        ),
    ),
    (
        "missing_type",
        "version: 1.0.0\n",
        ("def.yaml:1:1: missing required key 'type' in (top level) Hint: add `type:` here"),
    ),
    (
        "bad_type_name",
        "type: Sales Force\n",
        (
            "def.yaml:1:7: type: adapter name 'Sales Force' must be lowercase"
            " letters, digits, '-' and '_', optionally followed by @RANGE Hin"
            "t: see `connectors schema` for the accepted fields"
        ),
    ),
    (
        "bad_pin",
        "type: salesforce@^one\n",
        (
            "def.yaml:1:7: type: invalid version range '^one': 'one' is not a"
            " version; write '^1.2', '~1.2.3', '>=1.0,<2', '1.x', '*' or an e"
            "xact '1.2.3' Hint: see docs/templates.md#versions"
        ),
    ),
    (
        "double_pin",
        "type: salesforce@^1.0\nadapter_version: ^1.0\n",
        (
            "def.yaml:1:7: type: pin the adapter either in `type` or in `adap"
            "ter_version` Hint: see `connectors schema` for the accepted fiel"
            "ds"
        ),
    ),
    (
        "bad_version",
        "type: echo\nversion: v1\n",
        (
            "def.yaml:2:10: version: 'v1' is not a semantic version (MAJOR.MI"
            "NOR.PATCH, e.g. '1.4.2' or '2.0.0-rc.1') Hint: see docs/template"
            "s.md#versions"
        ),
    ),
    (
        "future_schema",
        "type: echo\nschema_version: 9\n",
        (
            "def.yaml:2:17: schema_version 9 is newer than this framework sup"
            "ports (2) Hint: upgrade the connectors package, or write the def"
            "inition in the older schema"
        ),
    ),
    (
        "string_schema",
        "type: echo\nschema_version: two\n",
        (
            "def.yaml:2:17: schema_version must be an integer, not 'two' Hint"
            ": write schema_version: 2"
        ),
    ),
    (
        "negative_retry",
        "type: echo\nresilience:\n  retry: {max_attempts: 0}\n",
        (
            "def.yaml:3:25: resilience.retry.max_attempts: Input should be gr"
            "eater than or equal to 1 Hint: raise the value"
        ),
    ),
    (
        "not_int",
        "type: echo\nresilience:\n  timeout_ms: soon\n",
        (
            "def.yaml:3:15: resilience.timeout_ms: Input should be a valid in"
            "teger, unable to parse string as an integer Hint: write a whole "
            "number"
        ),
    ),
    (
        "bad_rate",
        "type: echo\nrate_limits:\n  - {key: api, rate: 0}\n",
        (
            "def.yaml:3:22: rate_limits[0].rate: Input should be greater than"
            " 0 Hint: raise the value"
        ),
    ),
    (
        "rate_limits_not_list",
        "type: echo\nrate_limits: {key: api}\n",
        (
            "def.yaml:2:14: rate_limits: Input should be a valid list Hint: w"
            "rite a list ('- item' lines or [a, b])"
        ),
    ),
    (
        "unknown_auth_kind",
        "type: echo\nauth:\n  kind: oauth3\n",
        (
            "def.yaml:3:9: unknown kind 'oauth3' in auth Hint: use one of 'no"
            "ne', 'api_key', 'basic', 'bearer', 'oauth2_client_credentials'"
        ),
    ),
    (
        "auth_without_kind",
        "type: echo\nauth:\n  token: x\n",
        (
            "def.yaml:3:3: auth needs a `kind` Hint: set `kind:` to one of 'n"
            "one', 'api_key', 'basic', 'bearer', 'oauth2_client_credentials'"
        ),
    ),
    (
        "literal_secret",
        "type: echo\nauth:\n  kind: bearer\n  token: hunter2hunter2\n",
        (
            "def.yaml:4:10: auth.token: a secret must be a ${...} reference s"
            "uch as ${secret:NAME} or ${env:NAME}, never a literal value in a"
            " definition Hint: store the value with `connectors credentials s"
            "et` and write ${secret:NAME}"
        ),
    ),
    (
        "malformed_ref",
        'type: echo\nsettings:\n  token: "Bearer ${secret:}"\n',
        (
            "def.yaml:3:18: settings.token: malformed reference ${secret:}: t"
            "he secret: reference names nothing Hint: write ${secret:NAME}"
        ),
    ),
    (
        "unterminated_ref",
        "type: echo\nsettings:\n  url: https://x/${env:HOST\n",
        (
            "def.yaml:3:18: settings.url: unterminated reference starting '${"
            "env:HOST' Hint: close it with '}' (write $${ for a literal ${)"
        ),
    ),
    (
        "unknown_scheme",
        "type: echo\nsettings:\n  token: ${sercet:slack}\n",
        (
            "def.yaml:3:10: settings.token: unknown reference scheme 'sercet'"
            " Hint: did you mean 'secret'?"
        ),
    ),
    (
        "duplicate_key",
        "type: echo\nsettings: {}\nsettings: {}\n",
        (
            "def.yaml:3:1: duplicate key 'settings' (first defined on line 2)"
            " Hint: remove one of them: YAML would silently keep only the las"
            "t"
        ),
    ),
    (
        "tab_indent",
        "type: echo\nsettings:\n\tx: 1\n",
        (
            "def.yaml:3:1: invalid YAML: found character '\\t' that cannot sta"
            "rt any token Hint: indent with spaces, not tabs"
        ),
    ),
    (
        "unclosed_flow",
        "type: echo\nsettings: {a: [1, 2}\n",
        (
            "def.yaml:2:20: invalid YAML: expected ',' or ']', but got '}' Hi"
            "nt: check the indentation and quoting around this point"
        ),
    ),
    (
        "not_mapping",
        "- type: echo\n",
        (
            "def.yaml:1:1: definition 'def' must be a mapping with at least `"
            "type:` Hint: write `type: <adapter>` and the definition's other "
            "keys under it"
        ),
    ),
    (
        "two_documents",
        "type: echo\n---\ntype: echo\n",
        (
            "def.yaml:2:1: invalid YAML: but found another document Hint: a f"
            "ile holds one document: remove the extra '---'"
        ),
    ),
    (
        "http_without_api",
        "type: http\n",
        (
            "def.yaml:1:7: a declarative REST connector (type: http) needs an"
            " `api` block Hint: describe its operations under `api: operation"
            "s:` (see docs/templates.md)"
        ),
    ),
    (
        "api_on_other",
        "type: echo\napi:\n  operations:\n    x: {path: /x}\n",
        (
            "def.yaml:3:3: api: `api` describes declarative REST connectors; "
            "use type: http Hint: see `connectors schema` for the accepted fi"
            "elds"
        ),
    ),
    (
        "undeclared_placeholder",
        ("type: http\napi:\n  operations:\n    get_item:\n      path: /items/{id}\n"),
        (
            "def.yaml:5:7: api.operations.get_item: path uses {id} but no par"
            "ameter 'id' is declared; declared: (none) Hint: declare it under"
            " the operation's `params:`"
        ),
    ),
    (
        "reserved_op_name",
        "type: http\napi:\n  operations:\n    connect: {path: /x}\n",
        (
            "def.yaml:4:5: api.operations: operation name 'connect' must be s"
            "nake_case and not one of attempt, call, connect, disconnect, htt"
            "p, operations, request, stream Hint: see `connectors schema` for"
            " the accepted fields"
        ),
    ),
    (
        "bad_pagination_style",
        (
            "type: http\napi:\n  operations:\n    x:\n      path: /x\n      pagina"
            "tion: {style: cursr}\n"
        ),
        (
            "def.yaml:6:27: unknown style 'cursr' in api.operations.x.paginat"
            "ion Hint: use one of 'cursor', 'offset', 'page', 'link', 'next_u"
            "rl'"
        ),
    ),
    (
        "error_rule_without_condition",
        ("type: http\napi:\n  errors:\n    - {type: NotFound}\n  operations:\n    x: {path: /x}\n"),
        (
            "def.yaml:4:7: api.errors[0]: an error rule needs a `status`, a `"
            "body` condition or both Hint: see `connectors schema` for the ac"
            "cepted fields"
        ),
    ),
    (
        "migration_conflict",
        ("type: echo\nschema_version: 1\nresilience:\n  retry: {attempts: 2, max_attempts: 3}\n"),
        (
            "def.yaml:4:38: both resilience.retry.attempts (schema 1) and res"
            "ilience.retry.max_attempts are set Hint: remove resilience.retry"
            ".attempts"
        ),
    ),
    (
        "migration_bad_seconds",
        "type: echo\nschema_version: 1\nresilience:\n  timeout: fast\n",
        (
            "def.yaml:4:12: resilience.timeout must be a number of seconds, n"
            "ot 'fast' Hint: resilience.timeout is in seconds in schema 1; sc"
            "hema 2 takes milliseconds"
        ),
    ),
    (
        "wf_unbound_alias",
        ("connectors: {crm: {definition: salesforce}}\nsteps:\n  - id: a\n    use: cmr.query\n"),
        (
            "wf.yaml:4:10: step 'a' uses connector 'cmr', which is not bound "
            "under `connectors:` Hint: did you mean 'crm'?"
        ),
    ),
    (
        "wf_later_step",
        (
            "connectors: {crm: {definition: salesforce}}\nsteps:\n  - id: a\n   "
            ' use: crm.query\n    with: {soql: "{{ steps.b.output }}"}\n  - id:'
            " b\n    use: crm.query\n"
        ),
        (
            "wf.yaml:3:5: step 'a' refers to steps.b, which is not an earlier"
            " step Hint: a step can use the outputs of the steps above it onl"
            "y"
        ),
    ),
    (
        "wf_duplicate_id",
        (
            "connectors: {crm: {definition: salesforce}}\nsteps:\n  - {id: a, u"
            "se: crm.query}\n  - {id: a, use: crm.query}\n"
        ),
        "wf.yaml:4:10: step id 'a' is used twice Hint: rename it",
    ),
    (
        "wf_bad_jinja",
        (
            "connectors: {crm: {definition: salesforce}}\nsteps:\n  - id: a\n   "
            ' use: crm.query\n    with: {soql: "{{ inputs.x "}\n'
        ),
        (
            "wf.yaml:5:18: template syntax error: unexpected end of template,"
            " expected 'end of print statement'. Hint: check the {{ ... }} an"
            "d {% ... %} delimiters and the expression"
        ),
    ),
    (
        "wf_bad_on_error",
        (
            "connectors: {crm: {definition: salesforce}}\nsteps:\n  - {id: a, u"
            "se: crm.query, on_error: ignore}\n"
        ),
        (
            "wf.yaml:3:39: steps[0].on_error: Input should be 'fail' or 'cont"
            "inue' Hint: use one of the listed values"
        ),
    ),
    (
        "wf_bad_use",
        ("connectors: {crm: {definition: salesforce}}\nsteps:\n  - {id: a, use: query}\n"),
        (
            "wf.yaml:3:18: steps[0].use: use 'query' must be <connector alias"
            ">.<operation>, e.g. crm.query Hint: see `connectors schema` for "
            "the accepted fields"
        ),
    ),
    (
        "wf_bad_requires",
        (
            "requires: {salesforce: '^x'}\nconnectors: {crm: {definition: sale"
            "sforce}}\nsteps:\n  - {id: a, use: crm.query}\n"
        ),
        (
            "wf.yaml:1:11: requires: salesforce: invalid version range '^x': "
            "'^x' needs a version number after '^'; write '^1.2', '~1.2.3', '"
            ">=1.0,<2', '1.x', '*' or an exact '1.2.3' Hint: see docs/templat"
            "es.md#versions"
        ),
    ),
    (
        "wf_unknown_input_type",
        (
            "connectors: {crm: {definition: salesforce}}\ninputs:\n  n: {type: "
            "float}\nsteps:\n  - {id: a, use: crm.query}\n"
        ),
        (
            "wf.yaml:3:13: inputs.n.type: Input should be 'string', 'integer'"
            ", 'boolean', 'list' or 'secret' Hint: use one of the listed valu"
            "es"
        ),
    ),
    (
        "wf_with_typo",
        (
            "connectors: {crm: {definition: salesforce}}\nsteps:\n  - {id: a, u"
            "se: crm.query, width: {}}\n"
        ),
        ("wf.yaml:3:29: unknown key 'width' in steps[0] Hint: did you mean 'with'?"),
    ),
    (
        "wf_no_steps",
        "connectors: {crm: {definition: salesforce}}\nsteps: []\n",
        (
            "wf.yaml:2:8: steps: List should have at least 1 item after valid"
            "ation, not 0 Hint: check the number of items or characters"
        ),
    ),
]


@pytest.mark.parametrize(("case", "text", "expected"), MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed_documents_name_file_line_column_and_a_fix(case, text, expected):
    parse = parse_workflow if case.startswith("wf_") else parse_definition
    file = "wf.yaml" if case.startswith("wf_") else "def.yaml"
    with pytest.raises(DefinitionError) as info:
        parse(text, file=file)
    assert str(info.value) == expected
    assert "Hint: " in expected


def test_every_problem_of_a_file_is_reported_in_position_order():
    text = "type: echo\nsetings: {}\nresilience:\n  retry: {max_attempts: 0}\n"
    with pytest.raises(DefinitionErrors) as info:
        parse_definition(text, file="d.yaml")
    assert [(p.line, p.column) for p in info.value.problems] == [(2, 1), (4, 25)]
    assert str(info.value).count("\n") == 1


def test_anchors_aliases_and_merge_keys_are_supported_with_positions():
    text = (
        "type: echo\n"
        "settings: &base\n  region: eu\n  size: 1\n"
        "resilience:\n  retry:\n    <<: {max_attempts: 2}\n    base_delay_ms: 5\n"
    )
    loaded = parse_definition(text, file="d.yaml")
    assert loaded.definition.resilience.retry.max_attempts == 2
    _, smap = parse_document(text, "d.yaml")
    assert smap.value(("settings", "size")).line == 4


def test_a_schema_1_definition_is_migrated_with_a_notice():
    text = (
        "type: echo\nschema_version: 1\n"
        "resilience:\n  retry: {attempts: 5, delay: 0.25}\n  timeout: 2.5\n"
    )
    loaded = parse_definition(text, file="old.yaml")
    resilience = loaded.definition.resilience
    assert resilience.retry.max_attempts == 5
    assert resilience.retry.base_delay_ms == 250
    assert resilience.timeout_ms == 2500
    assert loaded.needs_migration
    assert loaded.definition.schema_version == 1
    assert loaded.notices == (
        "old.yaml:2:17: definition 'old' uses schema_version 1; it was migrated to 2 in "
        "memory. Hint: run `connectors validate --upgrade` to rewrite the file",
    )


def test_errors_in_a_migrated_file_point_at_the_old_key():
    text = "type: echo\nschema_version: 1\nresilience:\n  retry:\n    attempts: 0\n"
    with pytest.raises(DefinitionError) as info:
        parse_definition(text, file="old.yaml")
    assert str(info.value).startswith("old.yaml:5:15: resilience.retry.max_attempts:")


def test_upgrade_rewrites_keys_and_values_in_place_keeping_comments():
    text = (
        "# my connector\ntype: echo\nschema_version: 1  # old\n"
        "resilience:\n  retry:\n    attempts: 5   # five\n  timeout: 2.5\n"
    )
    upgraded = upgrade_text(text)
    assert upgraded == (
        "# my connector\ntype: echo\nschema_version: 2  # old\n"
        "resilience:\n  retry:\n    max_attempts: 5   # five\n  timeout_ms: 2500\n"
    )
    assert not parse_definition(upgraded).needs_migration
    assert upgrade_text(upgraded) == upgraded


def test_config_files_hold_inline_definitions_and_file_references(tmp_path):
    (tmp_path / "gh.yaml").write_text("type: echo\nsettings: {base_url: 'https://x.test'}\n")
    config = tmp_path / "connectors.yaml"
    config.write_text(
        "connectors:\n  inline: {type: echo}\n  from_file: gh.yaml\n  bad: {type: echo, x: 1}\n"
    )
    with pytest.raises(DefinitionErrors) as info:
        load_config(config)
    assert str(info.value) == (
        f"{config}:4:21: unknown key 'x' in connectors.bad Hint: allowed keys here: "
        "adapter_version, api, auth, description, rate_limits, resilience, schema_version, "
        "scopes, settings, type, version"
    )
    config.write_text("connectors:\n  inline: {type: echo}\n  from_file: gh.yaml\n")
    loaded = load_config(config)
    assert loaded["from_file"].definition.settings == {"base_url": "https://x.test"}
    assert loaded["inline"].file == str(config)


def test_unreadable_and_non_utf8_files_are_definition_errors(tmp_path):
    with pytest.raises(DefinitionError, match="cannot read configuration"):
        load_definition_file(tmp_path / "missing.yaml")
    bad = tmp_path / "latin.yaml"
    bad.write_bytes("type: \xe9cho\n".encode("latin-1"))
    with pytest.raises(DefinitionError, match="not UTF-8"):
        load_definition_file(bad)


def test_the_shipped_templates_load():
    found = load_directory("templates/connectors")
    assert {"salesforce", "slack", "email", "webhook", "github_issues", "stripe_charges"} <= set(
        found
    )
    assert all(not d.needs_migration for d in found.values())


# --- fuzzing: only DefinitionError, whatever the input ------------------------------------------

VALID = (
    "type: http@^1.0\nversion: 1.0.0\nschema_version: 1\n"
    "auth: {kind: bearer, token: '${secret:tok}'}\n"
    "settings: {base_url: 'https://api.test', id: '${tenant.id}'}\n"
    "resilience: {retry: {attempts: 2}, timeout: 1}\n"
    "rate_limits: [{key: a, rate: 1}]\n"
    "api:\n  pagination: {style: link}\n  operations:\n"
    "    list: {path: '/items/{id}', params: {id: {type: integer}}, select: 'data[*]'}\n"
)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), st.text(max_size=20)
)
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(max_size=12), children, max_size=5),
    ),
    max_leaves=25,
)


def _load_quietly(text: str) -> None:
    with contextlib.suppress(DefinitionError):
        parse_definition(text, file="fuzz.yaml")
    with contextlib.suppress(DefinitionError):
        parse_workflow(text, file="fuzz.yaml")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=300))
def test_random_text_never_crashes_the_loader(text):
    _load_quietly(text)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_random_yaml_documents_never_crash_the_loader(document):
    _load_quietly(yaml.safe_dump(document))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(st.integers(0, len(VALID)), st.integers(0, 8), st.text(max_size=6)),
        min_size=1,
        max_size=4,
    )
)
def test_mutations_of_a_valid_definition_never_crash_the_loader(edits):
    text = VALID
    for at, cut, insert in edits:
        at = min(at, len(text))
        text = text[:at] + insert + text[at + cut :]
    _load_quietly(text)


def test_the_unmutated_fuzz_seed_is_valid():
    assert parse_definition(VALID).definition.api is not None

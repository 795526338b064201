"""The template commands: validate, schema, check, run."""

from __future__ import annotations

import json

import typer
from typer.testing import CliRunner

from connectors.cli.templates import register
from connectors.config.schema import render_schema


def app() -> typer.Typer:
    root = typer.Typer()
    register(root)
    return root


def test_validate_prints_one_line_per_problem_and_fails(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("type: echo\nsetings: {}\nresilience: {timeout_ms: 0}\n")
    good = tmp_path / "good.yaml"
    good.write_text("type: echo\n")
    result = CliRunner().invoke(app(), ["validate", str(bad), str(good)])
    assert result.exit_code == 1
    lines = result.stdout.strip().splitlines()
    assert lines == [
        f"{bad}:2:1: unknown key 'setings' in (top level) Hint: did you mean 'settings'?",
        f"{bad}:3:26: resilience.timeout_ms: Input should be greater than or equal to 1 "
        "Hint: raise the value",
    ]


def test_validate_accepts_the_shipped_templates():
    result = CliRunner().invoke(app(), ["validate", "templates/connectors", "templates/workflows"])
    assert result.exit_code == 0, result.stdout


def test_validate_upgrade_rewrites_an_old_file(tmp_path):
    old = tmp_path / "old.yaml"
    old.write_text("type: echo\nschema_version: 1\nresilience:\n  timeout: 2\n")
    result = CliRunner().invoke(app(), ["validate", "--upgrade", str(old)])
    assert result.exit_code == 0
    assert old.read_text() == "type: echo\nschema_version: 2\nresilience:\n  timeout_ms: 2000\n"


def test_schema_prints_the_json_schema(tmp_path):
    out = tmp_path / "schema.json"
    result = CliRunner().invoke(app(), ["schema", "--output", str(out)])
    assert result.exit_code == 0
    assert out.read_text() == render_schema()
    assert json.loads(out.read_text())["title"] == "Connector definition"

"""The credentials, tokens, audit and access commands, end to end on a temporary data dir."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connectors.cli.app import app
from connectors.hub import Hub

CANARY = "canary-SECRET-7f3a9c1e"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    monkeypatch.setenv("CONNECTOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CONNECTOR_DEV_MODE", "true")
    monkeypatch.delenv("CONNECTOR_MASTER_KEYS", raising=False)
    monkeypatch.delenv("CONNECTOR_CONFIG", raising=False)
    monkeypatch.delenv("CONNECTOR_ACTOR", raising=False)
    Hub.set_default(None)
    yield CliRunner()
    Hub.set_default(None)


def invoke(cli: CliRunner, *args: str, input: str | None = None) -> str:
    result = cli.invoke(app, list(args), input=input, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_credential_value_comes_from_stdin_and_is_never_shown(cli: CliRunner) -> None:
    out = invoke(cli, "credentials", "set", "slack", "--tenant", "acme", input=CANARY + "\n")
    assert "version 1" in out
    listing = invoke(cli, "credentials", "list", "--tenant", "acme", "--json")
    assert CANARY not in out + listing
    [row] = json.loads(listing)
    assert row["name"] == "slack"
    assert row["fields"] == ["value"]


def test_several_fields_as_json_and_scopes_as_metadata(cli: CliRunner) -> None:
    payload = json.dumps({"client_id": "abc", "client_secret": CANARY})
    invoke(
        cli,
        "credentials",
        "set",
        "sf",
        "--tenant",
        "acme",
        "--json",
        "--scopes",
        "api refresh_token",
        input=payload,
    )
    [row] = json.loads(invoke(cli, "credentials", "list", "--tenant", "acme", "--json"))
    assert sorted(row["fields"]) == ["client_id", "client_secret"]
    assert row["metadata"]["scopes"] == ["api", "refresh_token"]


def test_an_actor_without_a_role_is_denied_and_audited(cli: CliRunner) -> None:
    result = cli.invoke(
        app,
        ["credentials", "set", "x", "--tenant", "acme", "--actor", "mallory"],
        input="v\n",
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, Exception)
    assert "mallory" in str(result.exception)
    events = json.loads(invoke(cli, "audit", "list", "--tenant", "acme", "--json"))
    assert any(e["kind"] == "access.denied" and e["actor"] == "mallory" for e in events)


def test_grant_then_the_actor_may_act(cli: CliRunner) -> None:
    invoke(cli, "access", "grant", "alice", "--tenant", "acme", "--role", "admin")
    invoke(cli, "credentials", "set", "x", "--tenant", "acme", "--actor", "alice", input="v\n")
    events = json.loads(invoke(cli, "audit", "list", "--tenant", "acme", "--json"))
    kinds = {(e["kind"], e["actor"]) for e in events}
    assert ("credential.put", "alice") in kinds
    assert ("access.change", "service") in kinds


def test_tokens_are_printed_once_and_listed_without_value(cli: CliRunner) -> None:
    out = invoke(cli, "tokens", "create", "--tenant", "acme", "--role", "viewer", "--name", "ci")
    token = out.strip().splitlines()[-1]
    assert token.startswith("cft_")
    listing = invoke(cli, "tokens", "list", "--tenant", "acme", "--json")
    assert token not in listing
    [row] = json.loads(listing)
    invoke(cli, "tokens", "revoke", row["id"], "--tenant", "acme")
    [row] = json.loads(invoke(cli, "tokens", "list", "--tenant", "acme", "--json"))
    assert row["revoked_at"] is not None


def test_audit_verify_and_export(cli: CliRunner, tmp_path: Path) -> None:
    invoke(cli, "credentials", "set", "a", "--tenant", "acme", input="v1\n")
    invoke(cli, "credentials", "delete", "a", "--tenant", "acme")
    assert "chain intact" in invoke(cli, "audit", "verify", "--tenant", "acme")
    target = tmp_path / "audit.jsonl"
    invoke(cli, "audit", "export", "--tenant", "acme", "--output", str(target))
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    assert [line["kind"] for line in lines] == ["credential.put", "credential.delete"]


def test_master_key_rotation_is_reserved_to_the_service_identity(cli: CliRunner) -> None:
    invoke(cli, "credentials", "set", "a", "--tenant", "acme", input="v1\n")
    assert "re-wrapped" in invoke(cli, "credentials", "rotate-master-key")
    result = cli.invoke(app, ["credentials", "rotate-master-key", "--actor", "alice"])
    assert result.exit_code != 0


def test_teams_give_their_members_the_team_role(cli: CliRunner) -> None:
    invoke(cli, "teams", "create", "ops", "--tenant", "acme", "--role", "admin")
    invoke(cli, "teams", "add", "ops", "bob", "--tenant", "acme")
    invoke(cli, "credentials", "set", "x", "--tenant", "acme", "--actor", "bob", input="v\n")
    assert "bob" in invoke(cli, "teams", "list", "--tenant", "acme")

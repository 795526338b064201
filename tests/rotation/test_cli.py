"""``connectors credentials rotate NAME --tenant T`` runs one rotation now."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from connectors.cli.rotate import register_credentials
from connectors.hub import Hub

OLD = "whsec_" + base64.b64encode(b"c" * 32).decode()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("CONNECTOR_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CONNECTOR_DEV_MODE", "true")
    monkeypatch.delenv("CONNECTOR_CONFIG", raising=False)
    Hub.set_default(None)
    yield tmp_path
    Hub.set_default(None)


def _stored() -> tuple[int, set[str]]:
    async def main() -> tuple[int, set[str]]:
        hub = Hub.default()
        await hub.start()
        try:
            cred = await hub.services.credentials.get("acme", "hooks", fresh=True)
            return cred.version, set(cred.fields)
        finally:
            await hub.aclose()

    return asyncio.run(main())


def test_rotate_now_with_an_ad_hoc_policy_rotates_and_revokes(env: Path) -> None:
    async def seed() -> None:
        hub = Hub.default()
        await hub.start()
        await hub.services.credentials.put("acme", "hooks", {"value": OLD}, actor="t")
        await hub.aclose()

    asyncio.run(seed())
    Hub.set_default(None)
    app = typer.Typer()
    register_credentials(app)
    app.command("noop")(lambda: None)
    runner = CliRunner()
    result = runner.invoke(
        app,
        ["rotate", "hooks", "--tenant", "acme", "--kind", "webhook_secret", "--no-verify"],
    )
    assert result.exit_code == 0, result.output
    assert "rotated 'hooks'" in result.output
    Hub.set_default(None)
    version, fields = _stored()
    assert version == 2  # one compare-and-swap write after the seed (no endpoints to stage)
    assert fields == {"value", "previous.value"}
    Hub.set_default(None)
    result = runner.invoke(
        app,
        ["rotate", "hooks", "--tenant", "acme", "--kind", "webhook_secret", "--no-verify"],
    )
    assert result.exit_code == 1, "a rotation inside the grace window is skipped"
    assert OLD not in result.output


def test_rotate_without_a_stored_policy_says_how_to_set_one(env: Path) -> None:
    app = typer.Typer()
    register_credentials(app)
    app.command("noop")(lambda: None)
    result = CliRunner().invoke(app, ["rotate", "hooks", "--tenant", "acme"])
    assert result.exit_code != 0
    assert "no rotation policy" in str(result.exception)

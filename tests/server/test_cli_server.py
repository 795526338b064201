"""``connectors emulate``/``serve``/``demo`` command wiring (the demo itself: test_demo.py)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx2
import typer
from typer.testing import CliRunner

from connectors.cli.server import register
from tests.server._live import free_port
from tests.server.test_demo import LAUNCH


def cli() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_the_commands_are_registered() -> None:
    result = CliRunner().invoke(cli(), ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "demo", "emulate"):
        assert command in result.output


def test_a_bad_fault_spec_or_option_is_refused_before_binding(tmp_path: Path) -> None:
    bad = CliRunner().invoke(cli(), ["emulate", "slack", "--faults", "5xx=2"])
    assert bad.exit_code == 2
    assert "5xx" in bad.output
    seed = tmp_path / "seed.yaml"
    seed.write_text("no_such_field: 1\n")
    unknown = CliRunner().invoke(cli(), ["emulate", "salesforce", "--seed-data", str(seed)])
    assert unknown.exit_code == 2
    assert "no_such_field" in unknown.output
    scaled = CliRunner().invoke(cli(), ["emulate", "salesforce", "--time-scale", "3"])
    assert scaled.exit_code == 2


def test_emulate_serves_the_slack_emulator_on_loopback_with_faults(tmp_path: Path) -> None:
    port = free_port()
    seed = tmp_path / "seed.yaml"
    seed.write_text("team_name: Initech\n")
    process = subprocess.Popen(
        [
            *(sys.executable, "-c", LAUNCH, "emulate", "slack", "--port", str(port)),
            *("--seed-data", str(seed), "--faults", "503=1.0:paths=/api/chat.*"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"http://127.0.0.1:{port}/api/"
        token = "xoxb-0001-emulator-default-bot-token"
        headers = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + 90
        with httpx2.Client(base_url=url, headers=headers, timeout=10) as client:
            while True:
                try:
                    answer = client.post("auth.test")
                    break
                except httpx2.TransportError:
                    assert time.monotonic() < deadline, "the emulator did not start"
                    time.sleep(0.2)
            assert answer.json()["team"] == "Initech"
            assert (
                client.post("chat.postMessage", data={"channel": "C1", "text": "x"}).status_code
                == 503
            )
    finally:
        process.terminate()
        process.wait(30)

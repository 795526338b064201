"""``connectors demo`` as a user runs it: a subprocess that prints a URL and tokens, serves the
dashboard with live data, and lets you log in with a printed token."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import httpx2

from tests.server._live import free_port

LAUNCH = (
    "import typer\n"
    "from connectors.cli.server import register\n"
    "app = typer.Typer()\n"
    "register(app)\n"
    "app()\n"
)


def _wait_for(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_demo_serves_the_dashboard_with_live_data_and_a_working_token(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "demo.out"
    with out.open("w") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                LAUNCH,
                "demo",
                "--port",
                str(port),
                "--data-dir",
                str(tmp_path / "data"),
                "--duration",
                "120",
                "--interval",
                "0.3",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env={"PYTHONUNBUFFERED": "1", "PATH": "/usr/bin:/bin"},
        )
    try:
        _wait_for(lambda: "admin token for globex" in out.read_text(), 120)
        text = out.read_text()
        assert f"http://127.0.0.1:{port}/" in text
        token = re.search(r"admin token for acme-corp: (cft_\S+)", text)
        assert token is not None
        base = f"http://127.0.0.1:{port}"
        with httpx2.Client(base_url=base, timeout=30) as client:
            _wait_for(lambda: _ok(client, "/livez"), 60)
            assert client.get("/livez").text == "ok"
            form = client.get("/login")
            nonce = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
            assert nonce is not None
            login = client.post(
                "/login", data={"token": token.group(1), "csrf_token": nonce.group(1)}
            )
            assert login.status_code == 303
            # Live data: traffic has produced calls on both connectors.
            _wait_for(lambda: _has_calls(client), 60)
            grid = client.get("/")
            assert grid.status_code == 200
            assert 'id="card-salesforce"' in grid.text
            assert 'id="card-slack"' in grid.text
            assert 'id="tenant">acme-corp<' in grid.text
            # The traffic also runs templates/workflows/lead_followup.yaml: its steps are audited.
            bearer = {"Authorization": f"Bearer {token.group(1)}"}
            _wait_for(lambda: _workflow_steps(client, bearer), 90)
            steps = _workflow_steps(client, bearer)
            assert {e["operation"] for e in steps} <= {
                "crm.query",
                "chat.post_message",
                "mail.send_text",
                "hooks.send",
            }
            assert all(e["target"].startswith("lead_followup/") for e in steps)
    finally:
        process.terminate()
        process.wait(30)


def _ok(client: httpx2.Client, path: str) -> bool:
    try:
        return client.get(path).status_code == 200
    except httpx2.TransportError:
        return False


def _has_calls(client: httpx2.Client) -> bool:
    body = client.get("/api/connectors/health").json()
    calls = {c["connector"]: c["calls_5m"] for c in body["connectors"]}
    return calls.get("salesforce", 0) > 0 and calls.get("slack", 0) > 0


def _workflow_steps(client: httpx2.Client, headers: dict[str, str]) -> list[dict[str, str]]:
    answer = client.get("/api/audit", params={"kind": "workflow.step"}, headers=headers)
    assert answer.status_code == 200, answer.text
    events: list[dict[str, str]] = answer.json()["events"]
    return events

"""Security invariant 1 across everything: one run, every surface, no secret value anywhere.

One test drives every adapter (Salesforce, Slack, webhook, declarative REST, email), the CLI,
the server API and the dashboard pages with distinctive secret values — OAuth client secrets,
bot tokens, a webhook secret, an API token for a REST provider, an SMTP password, a private key,
the server's admin API tokens — and captures every byte the framework emits:

- log lines (JSON to a captured stream for the whole run, ``capture_logs`` around the CLI, and
  every stdlib log record through ``caplog``);
- the audit log (``connectors.audit.query.export``) and the metrics (``Metrics.render()`` and
  ``/metrics``);
- every server response (status line, headers, body) and dashboard page;
- ``str``/``repr`` of every error raised, including deliberately provoked ones;
- the CLI's output;
- every file under the data directory, every table of the database dumped row by row (jobs,
  outbox, audit...), and the raw bytes of the SQLite files themselves — where the credential
  store keeps its (encrypted) values, so a canary in clear there fails the test too.

Each canary is searched raw, JSON-escaped and URL-encoded. The only allowed appearance is the
CLI's ``tokens create``, which prints the new token once by design.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import logging
import sqlite3
import urllib.parse
from pathlib import Path

import httpx2
import pytest
from typer.testing import CliRunner

from connectors.adapters.email import EmailConnector, OutgoingEmail
from connectors.adapters.http import HttpConnector
from connectors.adapters.webhook import WebhookConnector
from connectors.audit.query import AuditQuery, export
from connectors.cli.app import app as cli_app
from connectors.config.definition import ConnectorDefinition
from connectors.config.settings import Settings
from connectors.errors import ConnectorError
from connectors.hub import Hub
from connectors.observability.logging import configure_logging, reset_logging
from connectors.server.app import create_app
from connectors.server.demo import DEMO_TENANTS, build_demo
from connectors.testing.capture import capture_logs
from connectors.testing.salesforce.config import DEFAULT_USER
from tests.adapters.email.smtp_server import running_smtp_server
from tests.adapters.http.support import GITHUB_TOKEN, github_app, template
from tests.chaos._support import FlakyReceiver

TENANT = DEMO_TENANTS[0]
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"CANARY-webhook-key-5d0c1e77a9b3").decode()
SMTP_PASSWORD = "CANARY-smtp-password-8e21f4"
SPARE_API_KEY = "CANARY-spare-api-key-71c0d9be"
PRIVATE_KEY_BODY = "MIICanaryPrivateKeyBody0x5eedCAFEbabe4f1d2c3b4a59687"
PRIVATE_KEY = f"-----BEGIN PRIVATE KEY-----\n{PRIVATE_KEY_BODY}\n-----END PRIVATE KEY-----\n"
WRONG_TOKEN = "cft_CANARYwrongTokenNeverValid_0b9f"


class Seen:
    """Every captured text, labelled by where it came from."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, where: str, text: object) -> None:
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        self.items.append((where, str(text)))

    def error(self, where: str, exc: BaseException) -> None:
        self.add(f"{where} str", str(exc))
        self.add(f"{where} repr", repr(exc))
        if isinstance(exc, ConnectorError):
            self.add(f"{where} context", json.dumps(exc.context(), default=str))

    def response(self, where: str, response: httpx2.Response) -> None:
        head = "\n".join(f"{k}: {v}" for k, v in response.headers.multi_items())
        self.add(f"{where} {response.status_code}", f"{head}\n\n{response.text}")


def _forms(value: str) -> set[str]:
    return {value, json.dumps(value)[1:-1], urllib.parse.quote(value, safe="")}


async def _drive(data_dir: Path, seen: Seen, canaries: list[str], smtp_port: int) -> None:
    settings = Settings.load({}, data_dir=data_dir, dev_mode=True)
    env = await build_demo(data_dir, probe_interval=None, settings=settings)
    hub = env.hub
    try:
        await _drive_adapters(env.hub, seen, canaries, smtp_port)
        for tenant in DEMO_TENANTS:
            bot = await hub.services.credentials.get_field(tenant, "slack_bot_token")
            canaries.append(bot.reveal())
        canaries.append(env.salesforce.config.connected_apps[0].consumer_secret)
        canaries.extend(env.admin_tokens.values())
        await _drive_server(env, seen)
        await hub.services.audit.flush(timeout=None)
        lines = [line async for line in export(hub.services.database, AuditQuery(), "jsonl")]
        seen.add("audit export", "".join(lines))
        seen.add("metrics render", hub.metrics.render())
    finally:
        await hub.aclose()
        env.close()


async def _drive_adapters(hub: Hub, seen: Seen, canaries: list[str], smtp_port: int) -> None:
    hub.registry.register(WebhookConnector)
    hub.registry.register(HttpConnector)
    hub.registry.register(EmailConnector)
    github = template("github_issues")
    hub.definitions["github"] = github.model_copy(
        update={"settings": {**github.settings, "base_url": "http://github.test"}}
    )
    hub.transports["github"] = httpx2.ASGITransport(app=github_app(issues=3))
    hub.definitions["email"] = ConnectorDefinition.model_validate(
        {
            "type": "email",
            "settings": {
                "smtp_host": "127.0.0.1",
                "smtp_port": smtp_port,
                "smtp_security": "none",
                "username": "canary@example.com",
                "password": "${secret:smtp_password}",
                "default_from": "canary@example.com",
                "timeout": 10,
            },
        }
    )
    store = hub.services.credentials
    await store.put(TENANT, "github_token", {"value": GITHUB_TOKEN}, actor="canary")
    await store.put(TENANT, "hook", {"value": WEBHOOK_SECRET}, actor="canary")
    await store.put(TENANT, "smtp_password", {"value": SMTP_PASSWORD}, actor="canary")
    await store.put(TENANT, "spare", {"value": SPARE_API_KEY}, actor="canary")
    canaries.extend([GITHUB_TOKEN, WEBHOOK_SECRET, SMTP_PASSWORD, SPARE_API_KEY])
    canaries.append(WEBHOOK_SECRET.removeprefix("whsec_"))
    canaries.append(DEFAULT_USER.password)

    async def attempt(where: str, coro: object) -> None:
        try:
            await coro  # type: ignore[misc]
        except Exception as exc:
            seen.error(where, exc)

    actor = f"lead-followup@{TENANT}"
    async with hub.open("salesforce", tenant_id=TENANT, actor=actor) as sf:
        for n in range(6):
            await attempt("sf.query", sf.query("SELECT Id, Email FROM Contact LIMIT 3"))  # type: ignore[attr-defined]
            await attempt("sf.create", sf.create("Lead", {"LastName": f"C{n}", "Company": "X"}))  # type: ignore[attr-defined]
        await attempt("sf.bad", sf.query("SELECT FROM WHERE"))  # type: ignore[attr-defined]
    async with hub.open("slack", tenant_id=TENANT, actor=actor) as slack:
        for n in range(4):
            await attempt("slack.post", slack.post_message("#alerts", f"canary run {n}"))  # type: ignore[attr-defined]
        await attempt("slack.bad", slack.post_message("#no-such-channel", "x"))  # type: ignore[attr-defined]
    # A wrong client secret: the failure must not echo what was sent.
    await store.put("globex", "salesforce_client_secret", {"value": SPARE_API_KEY + "-wrong"},
                    actor="canary")  # fmt: skip
    try:
        async with hub.open("salesforce", tenant_id="globex", actor="lead-followup@globex") as sf:
            await attempt("sf.globex", sf.query("SELECT Id FROM Contact LIMIT 1"))  # type: ignore[attr-defined]
    except ConnectorError as exc:
        seen.error("sf.globex.connect", exc)
    async with hub.open("github", tenant_id=TENANT, actor=actor) as gh:
        await attempt("github.list", gh.list_issues(owner="acme", repo="app"))  # type: ignore[attr-defined]
        await attempt("github.create", gh.create_issue(owner="acme", repo="app", title="c"))  # type: ignore[attr-defined]
        await attempt("github.missing", gh.list_issues(owner="acme", repo="nope"))  # type: ignore[attr-defined]
    receiver = FlakyReceiver(fail_rate=0.3, seed=9)
    webhook = hub.open(
        "webhook", tenant_id=TENANT, settings={"retry_schedule": [0] * 10}, actor=f"admin@{TENANT}"
    )
    async with receiver.running(), webhook as hooks:
        endpoint = await hooks.create_endpoint(  # type: ignore[attr-defined]
                f"http://127.0.0.1:{receiver.port}/hook", ["${secret:hook}"],
                allow_nets=["127.0.0.1/32"],
            )  # fmt: skip
        for n in range(4):
            msg = await hooks.send("lead.created", {"n": n}, endpoint.id)  # type: ignore[attr-defined]
            for _ in range(10):
                result = await hooks.deliver_now(msg)  # type: ignore[attr-defined]
                if result is None or result.outcome == "success":
                    break
        await attempt("webhook.blocked", hooks.create_endpoint(  # type: ignore[attr-defined]
                "http://169.254.169.254/latest", ["${secret:hook}"]))  # fmt: skip
    async with hub.open("email", tenant_id=TENANT, actor=actor) as mail:
        message = OutgoingEmail(to=["someone@example.com"], subject="canary", text="hello")
        await attempt("email.send", mail.send(message))  # type: ignore[attr-defined]
        bad = OutgoingEmail(to=["x@y.z"], subject="a\r\nBcc: v@x.io", text="x")
        await attempt("email.bad", mail.send(bad))  # type: ignore[attr-defined]


async def _drive_server(env: object, seen: Seen) -> None:
    hub = env.hub  # type: ignore[attr-defined]
    app = create_app(hub, settings=env.settings)  # type: ignore[attr-defined]
    token = env.admin_tokens[TENANT]  # type: ignore[attr-defined]
    transport = httpx2.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        seen.response("livez", await client.get("/livez"))
        seen.response("anon api", await client.get("/api/connectors"))
        wrong = {"Authorization": f"Bearer {WRONG_TOKEN}"}
        seen.response("wrong token", await client.get("/api/connectors", headers=wrong))
        api = {"Authorization": f"Bearer {token}"}
        for path in ("/api/connectors", "/api/connectors/health", "/api/connectors/salesforce",
                     "/api/connectors/slack", "/api/audit?limit=500", "/metrics",
                     "/api/connectors/nope"):  # fmt: skip
            seen.response(path, await client.get(path, headers=api))
        for name in ("salesforce", "slack"):
            path = f"/api/connectors/{name}/check"
            seen.response(path, await client.post(path, headers=api))
        login = await client.get("/login")
        seen.response("login page", login)
        nonce = login.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        seen.response(
            "login bad",
            await client.post("/login", data={"token": WRONG_TOKEN, "csrf_token": nonce}),
        )
        login = await client.get("/login")
        nonce = login.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        answer = await client.post("/login", data={"token": token, "csrf_token": nonce})
        seen.response("login", answer)
        assert answer.status_code == 303
        for page in ("/", "/connectors/salesforce", "/connectors/slack", "/circuits", "/audit"):
            got = await client.get(page)
            assert got.status_code == 200, page
            seen.response(f"page {page}", got)


def _run_cli(data_dir: Path, seen: Seen, monkeypatch: pytest.MonkeyPatch) -> str:
    """The CLI over the same data directory; returns the token ``tokens create`` printed."""
    Hub.set_default(Hub(Settings.load({}, data_dir=data_dir, dev_mode=True)))
    runner = CliRunner()
    monkeypatch.setenv("CONNECTOR_ACTOR", f"admin@{TENANT}")
    created = ""
    try:
        with capture_logs() as events:
            steps = [
                (["credentials", "set", "jwt_key", "--tenant", TENANT, "--json"],
                 json.dumps({"private_key": PRIVATE_KEY})),
                (["credentials", "set", "spare2", "--tenant", TENANT], SPARE_API_KEY + "\n"),
                (["credentials", "list", "--tenant", TENANT], None),
                (["tokens", "list", "--tenant", TENANT], None),
                (["audit", "list", "--tenant", TENANT], None),
                (["audit", "export", "--tenant", TENANT], None),
                (["audit", "verify", "--tenant", TENANT], None),
                (["settings"], None),
                (["list"], None),
            ]  # fmt: skip
            for args, stdin in steps:
                result = runner.invoke(cli_app, args, input=stdin)
                seen.add(f"cli {' '.join(args[:2])}", result.output)
                if result.exception is not None and not isinstance(result.exception, SystemExit):
                    seen.error(f"cli {' '.join(args[:2])}", result.exception)
            made = runner.invoke(
                cli_app, ["tokens", "create", "--tenant", TENANT, "--role", "viewer", "--name", "c"]
            )
            assert made.exit_code == 0, made.output
            created = made.output.strip().splitlines()[-1]
            seen.add("cli tokens create (minus the token)", made.output.replace(created, ""))
        seen.add("cli logs", json.dumps(events, default=str))
    finally:
        Hub.set_default(None)
    return created


def _dump_database(path: Path) -> str:
    out: list[str] = []
    with sqlite3.connect(path) as db:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in db.execute(f'SELECT * FROM "{table}"'):
                out.append(f"{table}: {row!r}")
    return "\n".join(out)


def test_no_secret_value_appears_in_any_output_file_table_page_or_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.DEBUG)
    data_dir = tmp_path / "data"
    seen = Seen()
    canaries: list[str] = [PRIVATE_KEY_BODY, WRONG_TOKEN]
    stream = io.StringIO()
    configure_logging("DEBUG", "json", stream=stream)
    try:
        with running_smtp_server() as smtp:
            smtp.add_user("canary@example.com", SMTP_PASSWORD)
            asyncio.run(_drive(data_dir, seen, canaries, smtp.port))
            assert smtp.messages, "the email adapter sent nothing"
        created = _run_cli(data_dir, seen, monkeypatch)
        canaries.append(created)
    finally:
        reset_logging()
    seen.add("json log stream", stream.getvalue())
    for record in caplog.records:
        seen.add(f"stdlib log {record.name}", f"{record.getMessage()} {record.__dict__!r}")
    files = sorted(p for p in data_dir.rglob("*") if p.is_file())
    assert any(p.suffix == ".db" for p in files), files
    for path in files:
        seen.add(f"file {path.name}", path.read_bytes())
        if path.suffix == ".db":
            seen.add(f"tables of {path.name}", _dump_database(path))
    assert len(seen.items) > 100
    assert "jobs" in "".join(text for where, text in seen.items if where.startswith("tables"))
    leaks = [
        (where, canary[:12] + "…")
        for canary in canaries
        for form in _forms(canary)
        for where, text in seen.items
        if form in text
    ]
    assert leaks == [], f"secret values leaked: {leaks[:20]}"

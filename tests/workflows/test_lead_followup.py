"""``templates/workflows/lead_followup.yaml`` end to end against the emulators.

Salesforce and Slack run in process (ASGI emulators), email goes to a local aiosmtpd, the
webhook to a loopback HTTP receiver (created through the webhook connector with an SSRF
allowlist for 127.0.0.1/32 and delivered with ``deliver_now``).
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from tests.adapters.email.smtp_server import SmtpTestServer, running_smtp_server

from connectors.adapters.salesforce import SalesforceConnector
from connectors.adapters.webhook import WebhookConnector
from connectors.audit.query import AuditQuery, list_events
from connectors.config.definition import ConnectorDefinition
from connectors.context import CallContext
from connectors.hub import Hub
from connectors.testing.definitions import emulator_definitions
from connectors.testing.pytest_plugin import EmulatorHandle
from connectors.testing.slack.emulator import SlackEmulator
from connectors.workflows import WorkflowResult, WorkflowRunner, load_workflow

WORKFLOW = "templates/workflows/lead_followup.yaml"
TENANT = "acme-corp"
ACTOR = "lead-bot@acme-corp"
SYNC_KEY = "whsec_" + base64.b64encode(b"k" * 32).decode()


def test_lead_followup_is_a_valid_workflow():
    workflow = load_workflow(WORKFLOW)
    assert [s.use for s in workflow.steps] == [
        "crm.query",
        "chat.post_message",
        "mail.send_text",
        "hooks.send",
    ]
    assert workflow.problems() == []


class _Receiver(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[tuple[dict[str, str], bytes]]]]:
    """A loopback HTTP server recording every POST (headers, body)."""
    received: list[tuple[dict[str, str], bytes]] = []
    handler = type("Receiver", (_Receiver,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/crm-sync", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def smtp() -> Iterator[SmtpTestServer]:
    with running_smtp_server() as server:
        yield server


async def _seed(hub: Hub, sync_url: str) -> tuple[str, dict[str, str]]:
    """Grants, the webhook secret and endpoint, and three new Leads with two owners.

    Returns the ``since`` input (just before the leads were created) and lead id → owner email.
    """
    services = hub.services
    await hub.start()
    await services.access.grant(ACTOR, TENANT, "editor", by="test")
    await services.access.grant("admin@acme-corp", TENANT, "admin", by="test")
    await services.credentials.put(TENANT, "crm_sync_key", {"value": SYNC_KEY}, actor="test")
    async with hub.open("webhook", tenant_id=TENANT, actor="admin@acme-corp") as hooks:
        assert isinstance(hooks, WebhookConnector)
        await hooks.create_endpoint(
            sync_url,
            ["${secret:crm_sync_key}"],
            allow_nets=["127.0.0.1/32"],
            endpoint_id="crm-sync",
        )
    since = (datetime.now(UTC) - timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    owners: dict[str, str] = {}
    async with hub.open("salesforce", tenant_id=TENANT, actor=ACTOR) as sf:
        assert isinstance(sf, SalesforceConnector)
        [admin] = await sf.query("SELECT Id, Email FROM User WHERE Email != null LIMIT 1")
        rep = {
            "Email": "rep@emulated.example.com",
            "LastName": "Rep",
            "Username": "rep@acme",
            "Alias": "rep",
        }
        rep["Id"] = (await sf.create("User", rep)).id
        for n, user in enumerate([admin, rep, admin]):
            saved = await sf.create(
                "Lead",
                {
                    "FirstName": f"Ada{n}",
                    "LastName": "Lovelace",
                    "Company": f"Engines {n}",
                    "Email": f"ada{n}@engines.test",
                    "OwnerId": user["Id"],
                },
            )
            owners[saved.id] = str(user["Email"])
    return since, owners


def test_lead_followup_runs_end_to_end_against_the_emulators(
    connectors_hub: Hub,
    salesforce_emulator: EmulatorHandle,
    slack_emulator: EmulatorHandle,
    smtp: SmtpTestServer,
    receiver: tuple[str, list[tuple[dict[str, str], bytes]]],
) -> None:
    hub = connectors_hub
    sync_url, received = receiver
    hub.definitions.update(
        emulator_definitions(salesforce=salesforce_emulator, slack=slack_emulator)
    )
    hub.definitions["email"] = ConnectorDefinition.model_validate(
        {
            "type": "email",
            "settings": {
                "smtp_host": smtp.host,
                "smtp_port": smtp.port,
                "smtp_security": "none",
                "smtp_auth": "none",
                "default_from": "Sales bot <bot@acme.test>",
            },
        }
    )
    hub.definitions["webhook"] = ConnectorDefinition(type="webhook")
    slack = slack_emulator.emulator
    assert isinstance(slack, SlackEmulator)
    workflow = load_workflow(WORKFLOW)

    async def main() -> tuple[WorkflowResult, dict[str, str], list[object]]:
        since, owners = await _seed(hub, sync_url)
        ctx = CallContext(tenant=TENANT, actor=ACTOR)
        result = await WorkflowRunner(hub).run(workflow, ctx, {"since": since})
        [message_id] = [s.output for s in result.steps if s.id == "sync"]
        async with hub.open("webhook", tenant_id=TENANT, actor=ACTOR) as hooks:
            assert isinstance(hooks, WebhookConnector)
            delivered = await hooks.deliver_now(str(message_id))
            assert delivered is not None
            assert delivered.outcome == "success"
        await hub.services.flush()
        page = await list_events(hub.services.database, AuditQuery(tenant=TENANT, limit=500))
        return result, owners, [c.event for c in reversed(page.events)]

    result, owners, events = asyncio.run(main())

    assert result.status == "succeeded", result.dumps()
    assert {s.id: s.status for s in result.steps} == {
        "leads": "succeeded",
        "announce": "succeeded",
        "tell_owner": "succeeded",
        "sync": "succeeded",
    }
    # One Slack message per lead in #sales.
    posted = [m.text for m in slack.channel("sales").messages if m.text.startswith("New lead:")]
    assert sorted(posted) == sorted(f"New lead: Ada{n} Lovelace (Engines {n})" for n in range(3))
    # One email per lead, to that lead's owner.
    assert sorted(r for m in smtp.messages for r in m.rcpt_tos) == sorted(owners.values())
    subjects = sorted(
        str(message_from_bytes(m.original_content or b"")["Subject"]) for m in smtp.messages
    )
    assert subjects == [f"New lead: Engines {n}" for n in range(3)]
    # One webhook with every lead id, signed.
    [(headers, body)] = received
    payload = json.loads(body)
    assert payload["tenant"] == TENANT
    assert sorted(payload["lead_ids"]) == sorted(owners)
    assert headers["webhook-id"] == result.steps[-1].output
    assert headers["webhook-signature"].startswith("v1,")
    # Every step audited, each call as the actor.
    steps = [e for e in events if e.kind == "workflow.step"]
    assert [(e.target, e.outcome) for e in steps] == [
        ("lead_followup/leads", "success"),
        ("lead_followup/announce", "success"),
        ("lead_followup/tell_owner", "success"),
        ("lead_followup/sync", "success"),
    ]
    assert {e.actor for e in steps} == {ACTOR}
    calls = [(e.connector, e.operation) for e in events if e.kind != "workflow.step"]
    assert calls.count(("slack", "post_message")) == 3
    assert calls.count(("email", "send_text")) == 3
    assert {e.actor for e in events if e.connector in ("slack", "email")} == {ACTOR}

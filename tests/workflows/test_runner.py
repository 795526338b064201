"""The workflow runner: bindings through the Hub, when/for_each/on_error, audit, secrets."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from connectors.audit.query import AuditQuery, list_events
from connectors.base import Connector, operation
from connectors.config.definition import ConnectorDefinition
from connectors.config.settings import Settings
from connectors.context import CallContext
from connectors.errors import DefinitionError, IncompatibleVersion, NotFound
from connectors.hub import Hub
from connectors.registry import AdapterRegistry
from connectors.secrets import Secret
from connectors.testing.capture import capture_logs
from connectors.workflows import WorkflowResult, WorkflowRunner, parse_workflow

TOKEN = "xoxb-very-secret-token-123"
LEADS = [
    {"Id": "L1", "Name": "Ada", "Email": "ada@example.com"},
    {"Id": "L2", "Name": "Bob", "Email": None},
    {"Id": "L3", "Name": "Cy", "Email": "cy@example.com"},
]
SENT: list[dict[str, object]] = []


class Crm(Connector):
    name = "crm"
    version = "1.4.0"

    @operation(idempotent=True)
    async def leads(self, limit: int = 10) -> list[dict[str, object]]:
        return LEADS[:limit]

    @operation(idempotent=True)
    async def find(self, name: str, /, **fields: object) -> list[dict[str, object]]:
        return [lead for lead in LEADS if lead["Name"] == name and fields.get("Id", "L1") == "L1"]

    @operation(idempotent=True)
    async def lead_ids(self) -> AsyncIterator[str]:
        for lead in LEADS:
            yield str(lead["Id"])


class Chat(Connector):
    name = "chat"
    version = "2.0.0"

    @operation(idempotent=False, audit_target="channel")
    async def post(self, channel: str, text: str, token: Secret | None = None) -> dict[str, object]:
        if channel == "#missing":
            raise NotFound(f"channel {channel} does not exist")
        SENT.append(
            {"channel": channel, "text": text, "token_is_secret": isinstance(token, Secret)}
        )
        return {"ok": True, "channel": channel, "text": text, "token": token}


def make_hub(tmp_path) -> Hub:
    registry = AdapterRegistry(discover=False, builtins={})
    registry.register(Crm)
    registry.register(Chat)
    hub = Hub(
        Settings.load({}, data_dir=tmp_path / "data", dev_mode=True),
        registry=registry,
        definitions={
            "crm": ConnectorDefinition(type="crm"),
            "chat": ConnectorDefinition(type="chat"),
        },
    )

    async def setup() -> None:
        await hub.start()
        await hub.services.access.grant("alice", "acme", "editor")
        await hub.services.credentials.put("acme", "chat_token", {"value": TOKEN}, actor="t")
        await hub.aclose()

    asyncio.run(setup())
    SENT.clear()
    return hub


WORKFLOW = """\
name: announce
requires: {crm: ^1.2, chat: ">=2.0,<3"}
connectors:
  crm: {definition: crm}
  chat: {definition: chat}
inputs:
  channel: {type: string, default: "#sales"}
  limit: {type: integer, default: 10}
  token: {type: secret, default: "${secret:chat_token}"}
  loud: {type: boolean, default: false}
steps:
  - id: leads
    use: crm.leads
    with: {limit: "{{ inputs.limit }}"}
  - id: ids
    use: crm.lead_ids
  - id: announce
    use: chat.post
    for_each: "{{ steps.leads.output }}"
    with:
      channel: "{{ inputs.channel }}"
      text: "New lead {{ item.Name }} ({{ steps.ids.output | length }} today)"
      token: "{{ inputs.token }}"
  - id: shout
    use: chat.post
    when: "{{ inputs.loud }}"
    with: {channel: "#all", text: "!!!"}
  - id: broken
    use: chat.post
    with: {channel: "#missing", text: "x"}
    on_error: continue
  - id: after
    use: chat.post
    when: "{{ steps.broken.status == 'failed' }}"
    with: {channel: "#ops", text: "step broken failed: {{ steps.broken.error_code }}"}
"""


def run(hub: Hub, text: str = WORKFLOW, actor: str = "alice", **inputs: object):
    workflow = parse_workflow(text, file="wf.yaml")

    async def main() -> tuple[WorkflowResult, list]:
        try:
            result = await WorkflowRunner(hub).run(
                workflow, CallContext(tenant="acme", actor=actor), inputs
            )
            await hub.services.flush()
            page = await list_events(hub.services.database, AuditQuery(tenant="acme", limit=500))
            return result, [c.event for c in reversed(page.events)]
        finally:
            await hub.aclose()

    return asyncio.run(main())


def test_steps_follow_when_for_each_and_on_error_and_each_is_audited(tmp_path):
    hub = make_hub(tmp_path)
    with capture_logs() as logs:
        result, events = run(hub)
    statuses = {s.id: s.status for s in result.steps}
    assert statuses == {
        "leads": "succeeded",
        "ids": "succeeded",
        "announce": "succeeded",
        "shout": "skipped",
        "broken": "failed",
        "after": "succeeded",
    }
    assert result.status == "failed"  # a step failed, even though the run went on
    assert [s["text"] for s in SENT] == [
        "New lead Ada (3 today)",
        "New lead Bob (3 today)",
        "New lead Cy (3 today)",
        "step broken failed: NotFound",
    ]
    assert all(s["token_is_secret"] for s in SENT[:3])
    steps = [(e.operation, e.target, e.outcome) for e in events if e.kind == "workflow.step"]
    assert steps == [
        ("crm.leads", "announce/leads", "success"),
        ("crm.lead_ids", "announce/ids", "success"),
        ("chat.post", "announce/announce", "success"),
        ("chat.post", "announce/shout", "success"),
        ("chat.post", "announce/broken", "failure"),
        ("chat.post", "announce/after", "success"),
    ]
    ops = [(e.operation, e.actor, e.outcome) for e in events if e.kind == "operation"]
    assert ops.count(("post", "alice", "success")) == 4
    assert ("post", "alice", "failure") in ops
    data = result.to_json()
    text = json.dumps(data) + json.dumps([str(e.to_dict()) for e in events]) + repr(logs)
    assert TOKEN not in text
    announce = next(s for s in data["steps"] if s["id"] == "announce")
    assert announce["items"] == 3
    assert announce["output"][0]["token"] == "**********"
    broken = next(s for s in data["steps"] if s["id"] == "broken")
    assert broken["error_code"] == "NotFound"


def test_on_error_fail_stops_the_run(tmp_path):
    hub = make_hub(tmp_path)
    text = WORKFLOW.replace("    on_error: continue\n", "")
    result, _ = run(hub, text)
    assert [s.status for s in result.steps][-2:] == ["failed", "not_run"]
    assert result.status == "failed"


def test_steps_run_as_the_actor_and_are_denied_by_the_normal_path(tmp_path):
    hub = make_hub(tmp_path)
    result, events = run(hub, actor="mallory")
    first = result.steps[0]
    assert (first.status, first.error_code) == ("failed", "AccessDenied")
    assert [s.status for s in result.steps][1:] == ["not_run"] * 5
    assert any(e.kind == "access.denied" and e.actor == "mallory" for e in events)


def test_a_secret_written_into_text_fails_the_step_without_leaking(tmp_path):
    hub = make_hub(tmp_path)
    text = WORKFLOW.replace('text: "!!!"', 'text: "token={{ inputs.token }}"')
    with capture_logs() as logs:
        result, _ = run(hub, text, loud="true")
    shout = next(s for s in result.steps if s.id == "shout")
    assert shout.status == "failed"
    assert shout.error_code == "TemplateError"
    assert TOKEN not in result.dumps()
    assert TOKEN not in repr(logs)


def test_incompatible_requirements_fail_before_anything_runs(tmp_path):
    hub = make_hub(tmp_path)
    with pytest.raises(IncompatibleVersion, match=r"requires chat \^3\.0, but the installed"):
        run(hub, WORKFLOW.replace('chat: ">=2.0,<3"', "chat: ^3.0"))
    assert SENT == []


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"limt": 3}, "did you mean 'limit'"),
        ({"limit": "many"}, "input 'limit' must be integer"),
        ({"token": TOKEN}, "is a secret: give a ${...} reference"),
    ],
)
def test_bad_inputs_are_refused_before_anything_runs(tmp_path, inputs, message):
    hub = make_hub(tmp_path)
    with pytest.raises(DefinitionError) as info:
        run(hub, **inputs)
    assert message in str(info.value)
    assert TOKEN not in str(info.value)
    assert SENT == []


def test_unknown_operations_are_found_before_the_first_step(tmp_path):
    hub = make_hub(tmp_path)
    with pytest.raises(DefinitionError, match="did you mean 'post'"):
        run(
            hub,
            WORKFLOW.replace(
                'use: chat.post\n    when: "{{ inputs.loud',
                'use: chat.pots\n    when: "{{ inputs.loud',
            ),
        )
    assert SENT == []


ITEM_FILTER = """\
connectors:
  crm: {definition: crm}
  chat: {definition: chat}
steps:
  - id: leads
    use: crm.leads
  - id: mail_owners
    use: chat.post
    for_each: "{{ steps.leads.output }}"
    when: "{{ item.Email }}"
    with: {channel: "#sales", text: "mail {{ item.Email }}"}
"""


def test_a_when_naming_item_filters_the_for_each_items(tmp_path):
    hub = make_hub(tmp_path)
    result, events = run(hub, ITEM_FILTER)
    step = result.steps[1]
    assert (step.status, step.items) == ("succeeded", 2)
    assert [s["text"] for s in SENT] == ["mail ada@example.com", "mail cy@example.com"]
    [audited] = [e for e in events if e.kind == "workflow.step" and e.target.endswith("owners")]
    assert audited.details["items"] == 2


def test_a_when_without_item_still_decides_for_the_whole_for_each_step(tmp_path):
    hub = make_hub(tmp_path)
    result, _ = run(
        hub, ITEM_FILTER.replace("{{ item.Email }}", "{{ steps.leads.output | length > 5 }}")
    )
    assert result.steps[1].status == "skipped"
    assert SENT == []


def test_positional_only_parameters_are_given_by_name_in_with(tmp_path):
    hub = make_hub(tmp_path)
    text = """\
connectors: {crm: {definition: crm}}
steps:
  - id: found
    use: crm.find
    with: {name: Cy, Id: L1}
"""
    result, _ = run(hub, text)
    assert result.steps[0].status == "succeeded"
    assert result.steps[0].output == [LEADS[2]]

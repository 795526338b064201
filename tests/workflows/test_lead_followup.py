"""``templates/workflows/lead_followup.yaml`` end to end against the emulators.

Salesforce and Slack run in process (ASGI emulators), email goes to a local aiosmtpd, the
webhook to a loopback receiver.
"""

from __future__ import annotations

import pytest

from connectors.workflows import load_workflow

WORKFLOW = "templates/workflows/lead_followup.yaml"


def test_lead_followup_is_a_valid_workflow():
    workflow = load_workflow(WORKFLOW)
    assert [s.use for s in workflow.steps] == [
        "crm.query",
        "chat.post_message",
        "mail.send_text",
        "hooks.send",
    ]
    assert workflow.problems() == []


@pytest.mark.skip(
    reason="blocked by the email adapter: its `send` takes an OutgoingEmail object, which a "
    "YAML workflow cannot build; it needs a mapping-friendly `send_text(to, subject, text)` "
    "operation (the workflow's `mail.send_text` step). The webhook adapter also needs its "
    "database and delivery wiring from runtime.extras, which Hub.connector does not provide."
)
def test_lead_followup_runs_end_to_end_against_the_emulators():  # pragma: no cover
    raise AssertionError("see the skip reason")

"""How a user tests their own workflow code with the testing kit — no network, no mocks.

Run with ``pytest docs/examples/test_own_workflow.py``; the ``connectors`` pytest plugin
(installed with the framework) provides the fixtures.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from connectors import Hub, ServiceUnavailable
from connectors.testing.definitions import emulator_definitions
from connectors.testing.pytest_plugin import EmulatorHandle


async def notify_new_leads(hub: Hub, tenant: str) -> int:
    """The code under test: post each new lead to Slack; returns how many were posted."""
    async with (
        hub.open("salesforce", tenant_id=tenant) as sf,
        hub.open("slack", tenant_id=tenant) as slack,
    ):
        leads = await sf.query(  # type: ignore[attr-defined]
            "SELECT Id, LastName, Company FROM Lead WHERE Status = :status", status="New"
        )
        for lead in leads:
            await slack.post_message(  # type: ignore[attr-defined]
                "#sales", f"New lead: {lead['LastName']} ({lead['Company']})"
            )
        return len(leads)


async def add_leads(hub: Hub, tenant: str, *names: str) -> None:
    """Test data, created through the connector like any other call."""
    async with hub.open("salesforce", tenant_id=tenant) as sf:
        for name in names:
            await sf.create(  # type: ignore[attr-defined]
                "Lead", {"LastName": name, "Company": f"{name} Inc", "Status": "New"}
            )


@pytest.fixture
def hub(
    connectors_hub: Hub, salesforce_emulator: EmulatorHandle, slack_emulator: EmulatorHandle
) -> Hub:
    """The plugin's Hub with connectors named salesforce and slack pointing at the emulators."""
    connectors_hub.definitions.update(
        emulator_definitions(salesforce=salesforce_emulator, slack=slack_emulator)
    )
    asyncio.run(add_leads(connectors_hub, "acme", "Smith", "Jones"))
    return connectors_hub


def test_new_leads_are_posted(hub: Hub, slack_emulator: EmulatorHandle) -> None:
    posted = asyncio.run(notify_new_leads(hub, "acme"))

    channel = slack_emulator.emulator.channel("#sales")  # type: ignore[union-attr]
    assert posted == 2
    assert sum("New lead" in m.text for m in channel.messages) == 2


def test_a_flaky_salesforce_is_retried(hub: Hub, salesforce_emulator: EmulatorHandle) -> None:
    # A third of Salesforce's query answers are 5xx (seeded: the run is repeatable). The
    # framework retries them: the workflow never sees the failures.
    salesforce_emulator.faults.set("5xx=0.33:paths=*/query*,seed=3")

    assert asyncio.run(notify_new_leads(hub, "acme")) == 2


def test_a_provider_that_stays_down_surfaces_a_typed_error(
    hub: Hub,
    salesforce_emulator: EmulatorHandle,
    connectors_audit: Callable[..., list[dict[str, object]]],
) -> None:
    salesforce_emulator.faults.set("5xx=1.0:paths=*/query*")

    with pytest.raises(ServiceUnavailable) as info:
        asyncio.run(notify_new_leads(hub, "acme"))

    assert info.value.tenant == "acme"
    failures = connectors_audit(tenant="acme", outcome="failure")
    assert failures[0]["operation"] == "query"

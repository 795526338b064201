"""The pytest plugin's fixtures work as documented (the plugin is loaded by its entry point)."""

from __future__ import annotations

import asyncio

import httpx2
import pytest

from connectors.testing.pytest_plugin import EmulatorHandle, LoopbackServer
from connectors.testing.salesforce import SalesforceEmulator
from connectors.testing.slack.emulator import SlackEmulator


def test_in_process_emulators_come_with_a_quiet_fault_injector(
    salesforce_emulator: EmulatorHandle, slack_emulator: EmulatorHandle
) -> None:
    async def main() -> tuple[int, int]:
        async with httpx2.AsyncClient(
            transport=slack_emulator.transport, base_url=slack_emulator.base_url
        ) as client:
            ok = (await client.post("auth.test")).status_code
            slack_emulator.faults.set("503=1.0")
            failing = (await client.post("auth.test")).status_code
        return ok, failing

    assert asyncio.run(main()) == (200, 503)
    assert slack_emulator.faults.counters["5xx"] == 1
    assert sum(salesforce_emulator.faults.counters.values()) == 0


def test_loopback_emulators_answer_on_a_real_port(
    salesforce_loopback: tuple[SalesforceEmulator, LoopbackServer],
    slack_loopback: tuple[SlackEmulator, LoopbackServer],
) -> None:
    _, sf_server = salesforce_loopback
    _, slack_server = slack_loopback
    assert httpx2.get(f"{sf_server.url}/services/data").status_code == 200
    answer = httpx2.post(f"{slack_server.url}/api/auth.test").json()
    assert answer == {"ok": False, "error": "not_authed"}


def test_the_hub_fixture_is_isolated_and_sees_the_emulators(
    connectors_hub, salesforce_emulator: EmulatorHandle, connectors_audit
) -> None:
    assert connectors_hub.transports["salesforce"] is salesforce_emulator.transport
    assert "slack" not in connectors_hub.transports
    assert connectors_hub.settings.dev_mode
    assert connectors_audit(tenant="nobody") == []


def test_logs_are_captured_after_redaction(connectors_logs) -> None:
    from connectors.observability.logging import get_logger
    from connectors.secrets import Secret

    secret = Secret("plugin-canary-4f9e2b")
    get_logger("t").warning("something", detail=f"token {secret.reveal()}")
    assert connectors_logs
    assert "plugin-canary-4f9e2b" not in repr(connectors_logs)


def test_injected_salesforce_throttling_is_transient_not_the_daily_quota(
    connectors_hub, salesforce_emulator: EmulatorHandle, slack_emulator: EmulatorHandle
) -> None:
    """Injected 429s must not look like an exhausted daily quota (which would refuse every later
    call for an hour): once the faults stop, the next call goes through."""
    from connectors.errors import RateLimited
    from connectors.testing.definitions import emulator_definitions

    connectors_hub.definitions.update(
        emulator_definitions(salesforce=salesforce_emulator, slack=slack_emulator)
    )

    async def main() -> int:
        async with connectors_hub.open("salesforce", tenant_id="acme") as sf:
            salesforce_emulator.faults.set("429=1.0:retry_after=0.01:paths=*/query*")
            with pytest.raises(RateLimited) as info:
                await sf.count("Contact")  # type: ignore[attr-defined]
            assert info.value.quota != "DailyApiRequests"
            salesforce_emulator.faults.clear()
            return int(await sf.count("Contact"))  # type: ignore[attr-defined]

    assert asyncio.run(main()) >= 0

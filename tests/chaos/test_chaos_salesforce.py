"""Salesforce under 30% injected faults, in process, on a fake clock.

5xx, connections dropped before and after the emulator handled the request, latency beyond the
attempt timeout, 429 storms and sessions expiring mid-run (``expire_token_at``). Proves: every
idempotent operation succeeds within its deadline; a create is never duplicated (each has a
unique marker; the emulator's record store is counted afterwards) and a create whose answer was
lost is surfaced (``AmbiguousOutcome``, or a read ``Timeout`` with ``request_sent``), not retried;
every surfaced failure is a typed ``ConnectorError`` with a matching failure audit record.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx2

from connectors.adapters.salesforce import SalesforceConnector
from connectors.clock import FakeClock
from connectors.config.definition import ConnectorDefinition
from connectors.config.settings import Settings
from connectors.hub import Hub
from connectors.registry import AdapterRegistry
from connectors.secrets import Secret
from connectors.testing.faults import FaultInjector
from connectors.testing.salesforce import (
    SalesforceEmulatorConfig,
    SeedSpec,
    create_salesforce_app,
)
from connectors.testing.salesforce.config import DEFAULT_APP, DEFAULT_USER

from ._support import (
    CHAOS_FAULTS,
    CHAOS_RESILIENCE,
    AttemptTimeoutTransport,
    Ledger,
    assert_failures_audited,
    audit_events,
    maybe_processed,
)

TENANT = "acme-corp"


def _settings() -> dict[str, object]:
    return {
        "auth": "password",
        "client_id": DEFAULT_APP.consumer_key,
        "client_secret": Secret(DEFAULT_APP.consumer_secret),
        "username": DEFAULT_USER.username,
        "password": Secret(DEFAULT_USER.password),
    }


def test_salesforce_under_30_percent_faults_keeps_every_invariant(
    tmp_path: Path, chaos_scale: int
) -> None:
    clock = FakeClock()
    emulator = create_salesforce_app(
        SalesforceEmulatorConfig(seed=SeedSpec(contacts=30, accounts=5, leads=0)), clock=clock
    )
    calls = 40 * chaos_scale
    # Sessions expire every 75 faultable requests (the token endpoint itself is not faulted). A
    # session revoked again while a request is retrying on its fresh replacement surfaces
    # AuthenticationFailed by design (one refresh per request), so expiries are spaced out.
    expiries = "|".join(str(n) for n in range(75, calls * 6, 75))
    injector = FaultInjector(
        emulator.app,
        f"{CHAOS_FAULTS},expire_token_at={expiries},paths=/services/data/*",
        seed=1,
        clock=clock,
        on_expire_tokens=emulator.expire_all_sessions,
    )
    transport = AttemptTimeoutTransport(httpx2.ASGITransport(app=injector), clock)
    registry = AdapterRegistry(discover=False, builtins={})
    registry.register(SalesforceConnector)
    hub = Hub(
        Settings.load({}, data_dir=tmp_path / "data", dev_mode=True),
        definitions={
            "salesforce": ConnectorDefinition.model_validate(
                {"type": "salesforce", "settings": _settings(), "resilience": CHAOS_RESILIENCE}
            )
        },
        registry=registry,
        transports={"salesforce": transport},
        clock=clock,
    )
    reads, updates, creates = Ledger(), Ledger(), Ledger()

    async def main() -> None:
        try:
            async with hub.open("salesforce", tenant_id=TENANT) as sf:
                assert isinstance(sf, SalesforceConnector)
                seeded = await sf.query("SELECT Id FROM Contact ORDER BY Id")
                ids = [str(r["Id"]) for r in seeded]

                async def one(n: int) -> None:
                    target = ids[n % len(ids)]
                    await reads.call(
                        f"query-{n}",
                        sf.query("SELECT Id, Email FROM Contact WHERE Id = :id", id=target),
                    )
                    await reads.call(f"get-{n}", sf.get("Contact", target, fields=["Id"]))
                    await updates.call(
                        f"update-{n}", sf.update("Contact", target, {"Title": f"t{n}"})
                    )
                    await updates.call(
                        f"upsert-{n}",
                        sf.upsert("Contact", "External_Id__c", f"chaos-{n}", {"LastName": "U"}),
                    )
                    await creates.call(
                        f"chaos-lead-{n}",
                        sf.create("Lead", {"LastName": f"chaos-lead-{n}", "Company": "Chaos"}),
                    )

                for start in range(0, calls, 8):
                    await asyncio.gather(*(one(n) for n in range(start, min(start + 8, calls))))
            events = await audit_events(hub, TENANT)
        finally:
            await hub.aclose()
        # --- invariants -----------------------------------------------------------------------
        assert injector.counters["drop_after"]
        assert injector.counters["429"]
        assert injector.counters["5xx"]
        assert injector.counters["expire_tokens"]
        assert transport.timeouts, "no attempt ran past its timeout"
        assert reads.failed == {}, f"idempotent reads failed: {reads.failed}"
        assert updates.failed == {}, f"idempotent writes failed: {updates.failed}"
        assert_failures_audited(creates, events)
        lead = emulator.org.sobject("Lead")
        assert lead is not None
        names: dict[str, int] = {}
        for record in emulator.org.store.iter_records(lead, include_deleted=False):
            name = str(record.get("LastName"))
            names[name] = names.get(name, 0) + 1
        assert max(names.values()) == 1, "a create was duplicated"
        for key, _result in creates.succeeded.items():
            assert names.get(key) == 1, key
        ambiguous = 0
        for key, error in creates.failed.items():
            if maybe_processed(error):
                ambiguous += 1
            else:  # refused before processing: nothing was created
                assert key not in names, (key, error)
        attempts = {e.request_id: e.attempts for e in events if e.operation == "create"}
        for error in creates.failed.values():
            if maybe_processed(error):
                assert attempts[error.request_id] == 1, "an ambiguous create was retried"  # type: ignore[attr-defined]
        assert ambiguous, "no create saw an ambiguous outcome"
        upserted = {
            str(r.get("External_Id__c"))
            for r in emulator.org.store.iter_records(
                emulator.org.sobject("Contact"),  # type: ignore[arg-type]
                include_deleted=False,
            )
            if str(r.get("External_Id__c", "")).startswith("chaos-")
        }
        assert len(upserted) == calls

    try:
        asyncio.run(main())
    finally:
        emulator.close()

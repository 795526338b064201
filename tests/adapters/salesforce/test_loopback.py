"""``build_server`` and the quickstart example over real HTTP (uvicorn on a loopback port).

Every operation runs over loopback in ``test_every_operation.py``; this module keeps the smoke
test of the server that ``build_server`` returns (what ``connectors emulate salesforce`` runs).
"""

from __future__ import annotations

import runpy
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.auth import InMemoryLockProvider, InMemoryTokenStore, TokenManager
from connectors.clock import system_clock
from connectors.testing.salesforce import SalesforceEmulatorConfig, SeedSpec, build_server

from .conftest import KeyPair, SfEnv, jwt_app
from .modes import loopback_socket, serving

EXAMPLE = Path(__file__).resolve().parents[3] / "docs" / "examples" / "salesforce_quickstart.py"


@pytest.fixture
def loopback_env(key_pair: KeyPair, tmp_path: Path) -> Iterator[tuple[SfEnv, str]]:
    sock = loopback_socket()
    port = int(sock.getsockname()[1])
    base = f"http://127.0.0.1:{port}"
    emulator, server = build_server(
        port=port,
        config=SalesforceEmulatorConfig(instance_url=base, seed=SeedSpec(contacts=450)),
    )
    emulator.add_connected_app(jwt_app(key_pair))
    env = SfEnv.__new__(SfEnv)
    env.emulator, env.keys, env.app, env.data_dir = emulator, key_pair, None, tmp_path
    env.clock = system_clock  # type: ignore[assignment]
    env.tokens = TokenManager(InMemoryTokenStore(), InMemoryLockProvider())
    env.hub = env.make_hub(None)
    env.hub.transports.clear()  # the real network stack
    try:
        with serving(server, sock):
            yield env, base
    finally:
        emulator.close()


def test_query_iter_create_upsert_and_bulk_ingest_over_loopback(
    loopback_env: tuple[SfEnv, str],
) -> None:
    env, base = loopback_env
    settings = env.jwt_settings(token_url=f"{base}/services/oauth2/token", bulk_poll_interval=0.05)

    async def main() -> None:
        async with env.open(settings) as sf:
            assert sf.instance_url == base
            ids = [r["Id"] async for r in sf.query_iter("SELECT Id FROM Contact", batch_size=200)]
            assert len(set(ids)) == 450
            made = await sf.create("Lead", {"LastName": "Loop", "Company": "Back"})
            assert made.success
            up = await sf.upsert(
                "Lead", "External_Id__c", "lb-1", {"LastName": "U", "Company": "C"}
            )
            assert up.created is True
            result = await sf.bulk_insert(
                "Lead", ({"LastName": f"B{i}", "Company": "C"} for i in range(300))
            )
            assert result.records_processed == 300
            ok = [r async for r in sf.bulk_successful_results(result)]
            assert len(ok) == 300

    env.run(main)


def test_the_specification_example_runs_verbatim(capsys: pytest.CaptureFixture[str]) -> None:
    text = EXAMPLE.read_text()
    for line in (
        "from connectors import get_connector",
        'sf = get_connector("salesforce", tenant_id="acme-corp")',
        'contacts = sf.query("SELECT Id, Name, Email FROM Contact LIMIT 10")',
        'new_lead = sf.create("Lead", {"FirstName": "Alice", "LastName": "Smith", '
        '"Company": "Example Inc"})',
    ):
        assert line in text
    runpy.run_path(str(EXAMPLE), run_name="__main__")
    out = capsys.readouterr().out
    assert "10 contacts" in out
    assert "created lead 00Q" in out

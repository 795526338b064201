"""Periodic probes: results land in the model, failures are results, the loop keeps its cadence."""

from __future__ import annotations

import asyncio
from pathlib import Path

from connectors.base import Connector
from connectors.clock import FakeClock
from connectors.errors import AuthenticationFailed
from connectors.observability.health import HealthStatus
from connectors.server.health import HealthModel
from connectors.server.probes import Prober
from connectors.server.settings import ServerSettings
from tests.server._support import make_server_hub


class Broken(Connector):
    name = "broken"
    version = "1.0.0"
    connects = 0

    async def on_connect(self) -> None:
        type(self).connects += 1
        raise AuthenticationFailed("bad credentials", provider_code="invalid_client")


def test_a_probe_records_the_connector_health(tmp_path: Path) -> None:
    async def main() -> None:
        hub = make_server_hub(tmp_path)
        model = HealthModel(hub, ServerSettings(probe_interval=None))
        prober = Prober(model, interval=None, timeout=5)
        try:
            async with hub.open("echo", tenant_id="acme") as conn:
                for _ in range(5):
                    await conn.echo("x")  # type: ignore[attr-defined]
            result = await prober.probe("acme", "echo")
            assert result.health.status is HealthStatus.HEALTHY
            assert model.probes[("acme", "echo")] is result
            assert (await model.view("acme", "echo")).probe is result
        finally:
            await prober.stop()
            await hub.aclose()

    asyncio.run(main())


def test_a_failing_connect_is_an_unhealthy_result_and_is_retried_next_time(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        hub = make_server_hub(tmp_path)
        hub.registry.register(Broken)
        model = HealthModel(hub, ServerSettings(probe_interval=None, connectors=("broken",)))
        prober = Prober(model, interval=None, timeout=5)
        try:
            Broken.connects = 0
            first = await prober.probe("acme", "broken")
            assert first.health.status is HealthStatus.UNHEALTHY
            assert first.error == "invalid_client"
            await prober.probe("acme", "broken")
            assert Broken.connects == 2
            view = await model.view("acme", "broken")
            assert view.status is HealthStatus.UNHEALTHY
        finally:
            await prober.stop()
            await hub.aclose()

    asyncio.run(main())


def test_the_loop_probes_every_known_tenant_then_waits_the_interval(tmp_path: Path) -> None:
    async def main() -> None:
        clock = FakeClock()
        hub = make_server_hub(tmp_path, clock=clock)
        settings = ServerSettings(probe_interval=30, probe_tenants=("acme", "globex"))
        model = HealthModel(hub, settings)
        prober = Prober(model, interval=30, timeout=5)
        try:
            await hub.start()
            prober.start()
            for _ in range(500):  # real time, bounded: the fake clock skips the waits
                await asyncio.sleep(0.01)
                if prober.rounds >= 3:
                    break
            assert prober.rounds >= 3
            assert set(model.probes) == {
                ("acme", "echo"),
                ("acme", "echo-b"),
                ("globex", "echo"),
                ("globex", "echo-b"),
            }
            assert clock.sleeps.count(30) >= 2
        finally:
            await prober.stop()
            await hub.aclose()

    asyncio.run(main())

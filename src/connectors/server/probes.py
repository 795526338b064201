"""Periodic health probes: every ``interval`` seconds, each tenant's connectors run
``health_check()`` and the result lands in the :class:`~connectors.server.health.HealthModel`.

The probes run as an asyncio task started in the app's lifespan (the jobs layer has no periodic
schedule, and a probe result is only useful to the process serving the dashboard). Probes run as
the process's service identity, one connector at a time per round so a slow provider cannot
stampede; each is bounded by ``timeout``. Connectors stay connected between rounds (a probe
should not pay a login each time) and are rebuilt after a failure. :meth:`Prober.probe` is also
what ``POST /api/connectors/{name}/check`` calls.
"""

from __future__ import annotations

import asyncio
import contextlib

from connectors.base import Connector
from connectors.errors import ConnectorError
from connectors.lifecycle import State
from connectors.observability.health import Health, HealthCheck, HealthStatus
from connectors.observability.logging import get_logger
from connectors.server.health import HealthModel, ProbeResult

__all__ = ["Prober"]

_log = get_logger("connectors.server.probes")


class Prober:
    """Runs ``health_check()`` for (tenant, connector) pairs and records the results."""

    def __init__(self, model: HealthModel, *, interval: float | None, timeout: float) -> None:
        self.model = model
        self.interval = interval
        self.timeout = timeout
        self._open: dict[tuple[str, str], Connector] = {}
        self._task: asyncio.Task[None] | None = None
        self.rounds = 0

    async def probe(self, tenant: str, name: str) -> ProbeResult:
        """Probe one connector now; never raises for provider trouble (it is the result)."""
        hub = self.model.hub
        clock = hub.clock
        started = clock.monotonic()
        at = clock.time()
        try:
            async with asyncio.timeout(self.timeout):
                conn = await self._connected(tenant, name)
                health = await conn.health_check()
            result = ProbeResult(health, at, clock.monotonic() - started)
        except (ConnectorError, TimeoutError) as exc:
            await self._drop(tenant, name)
            code = exc.code if isinstance(exc, ConnectorError) else "Timeout"
            check = HealthCheck("probe", HealthStatus.UNHEALTHY, code, at)
            result = ProbeResult(Health.from_checks([check]), at, clock.monotonic() - started, code)
        self.model.probes[(tenant, name)] = result
        return result

    async def _connected(self, tenant: str, name: str) -> Connector:
        key = (tenant, name)
        conn = self._open.get(key)
        if conn is not None and conn.state is State.CONNECTED:
            return conn
        hub = self.model.hub
        await hub.start()
        conn = hub.connector(name, tenant_id=tenant)
        self._open[key] = conn
        await conn.connect()
        return conn

    async def _drop(self, tenant: str, name: str) -> None:
        conn = self._open.pop((tenant, name), None)
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.disconnect()

    async def run_round(self) -> int:
        """Probe every visible connector of every known tenant once; how many were probed."""
        count = 0
        for tenant in self.model.tenants():
            for name in self.model.connectors_for(tenant):
                await self.probe(tenant, name)
                count += 1
        self.rounds += 1
        return count

    async def _loop(self) -> None:
        assert self.interval is not None
        clock = self.model.hub.clock
        while True:
            try:
                await self.run_round()
            except Exception as exc:  # a bug in one round must not end probing
                _log.warning("probe.round_failed", error=type(exc).__name__)
            await clock.sleep(self.interval)

    def start(self) -> None:
        """Start the periodic loop (no-op without an interval or when running)."""
        if self.interval is None or (self._task is not None and not self._task.done()):
            return
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="health-probes")

    async def stop(self) -> None:
        """Stop the loop and disconnect every probe connector."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for key in list(self._open):
            await self._drop(*key)

"""Whether a rotated credential works: the verdict, the verifier interface, and the one that
asks the connector itself (its ``health_check()`` with the new value in place).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from connectors.errors import ConnectorError
from connectors.observability.health import HealthStatus
from connectors.rotation.policy import RotationPolicy

if TYPE_CHECKING:
    from connectors.hub import Hub

__all__ = ["HubVerifier", "Verification", "Verifier"]


@dataclass(frozen=True, slots=True)
class Verification:
    """The verdict on a new credential; ``detail`` is a short reason, never a value."""

    ok: bool
    detail: str = ""


class Verifier(Protocol):
    """Checks that a tenant's credential works, as the connector would use it."""

    async def verify(self, tenant: str, policy: RotationPolicy) -> Verification: ...


class HubVerifier:
    """Opens the policy's connector for the tenant and runs its ``health_check()``.

    Healthy or degraded passes; unhealthy, unknown or an exception fails.
    """

    def __init__(self, hub: Hub, *, actor: str = "rotation") -> None:
        self.hub = hub
        self.actor = actor

    async def verify(self, tenant: str, policy: RotationPolicy) -> Verification:
        if policy.connector is None:
            return Verification(True, "no connector to probe")
        try:
            async with self.hub.open(policy.connector, tenant_id=tenant, actor=self.actor) as conn:
                health = await conn.health_check()
        except ConnectorError as exc:
            return Verification(False, f"{exc.code}: connecting failed")
        if health.status in (HealthStatus.HEALTHY, HealthStatus.DEGRADED):
            return Verification(True, health.status.value)
        failing = [c.name for c in health.checks if c.status is not HealthStatus.HEALTHY]
        return Verification(False, f"{health.status.value}: {', '.join(failing) or 'no checks'}")

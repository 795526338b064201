"""Picking the job runner from configuration, with every framework job function registered.

``CONNECTOR_JOBS_BACKEND`` (``local``, ``procrastinate`` or ``auto``, the default) chooses:
``auto`` means procrastinate when ``CONNECTOR_DATABASE_URL`` is PostgreSQL, else the local
runner on the embedded SQLite database. Both run the same job functions
(:func:`default_registry`) with the same services (:func:`job_services`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol

from connectors.jobs.registry import JobRegistry
from connectors.jobs.runner import LocalJobRunner

if TYPE_CHECKING:
    from connectors.hub import Hub

__all__ = ["JobRunner", "backend_for", "default_registry", "job_runner_for", "job_services"]

Backend = Literal["local", "procrastinate"]


class JobRunner(Protocol):
    """What both runners offer."""

    def start(self) -> None: ...

    def notify(self) -> None: ...

    async def run_pending(self) -> int: ...

    async def shutdown(self, grace: float | None = None) -> None: ...


def backend_for(hub: Hub) -> Backend:
    """The configured backend (see the module docstring)."""
    chosen = hub.settings.jobs_backend
    if chosen != "auto":
        return chosen
    url = hub.settings.database_url or ""
    return "procrastinate" if url.startswith("postgresql") else "local"


def default_registry() -> JobRegistry:
    """Every framework job: webhook delivery, rotation, revocation, token refresh, probes."""
    from connectors.adapters.webhook.delivery import register_jobs as webhook_jobs
    from connectors.rotation.jobs import register_jobs as rotation_jobs

    registry = JobRegistry()
    webhook_jobs(registry)
    rotation_jobs(registry)
    return registry


def job_services(hub: Hub) -> dict[str, object]:
    """The services the job functions look up, built on the Hub."""
    from connectors.adapters.webhook.delivery import SERVICE_KEY as WEBHOOK
    from connectors.adapters.webhook.delivery import DeliveryService
    from connectors.rotation.engine import RotationEngine
    from connectors.rotation.jobs import PROBE_SERVICE, SERVICE_KEY, Prober

    async def probe(tenant: str, connector: str) -> None:
        async with hub.open(connector, tenant_id=tenant, actor="health-probe") as conn:
            await conn.health_check()

    services = hub.services
    return {
        WEBHOOK: DeliveryService(
            services.database,
            secrets=services.resolvers,
            state=hub.state,
            clock=hub.clock,
            audit=services,
        ),
        SERVICE_KEY: RotationEngine.for_hub(hub),
        PROBE_SERVICE: Prober(probe),
    }


def job_runner_for(
    hub: Hub,
    *,
    registry: JobRegistry | None = None,
    services: dict[str, object] | None = None,
    backend: Backend | None = None,
    concurrency: int = 4,
) -> JobRunner:
    """The Hub's job runner: local (SQLite or PostgreSQL table) or procrastinate."""
    registry = registry if registry is not None else default_registry()
    services = services if services is not None else job_services(hub)
    chosen = backend or backend_for(hub)
    database = hub.services.database
    if chosen == "procrastinate":
        from connectors.jobs.procrastinate_runner import ProcrastinateJobRunner

        return ProcrastinateJobRunner(
            database, registry, services=services, concurrency=concurrency, clock=hub.clock
        )
    return LocalJobRunner(
        database, registry, services=services, concurrency=concurrency, clock=hub.clock
    )

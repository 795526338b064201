"""Shared pieces for the webhook tests: a database, an endpoint, a fake DNS, a runner."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path

import httpx2

from connectors.adapters.webhook import (
    SERVICE_KEY,
    DeliveryOptions,
    DeliveryService,
    EndpointStore,
    StaticSecrets,
    WebhookOutbox,
    register_jobs,
)
from connectors.adapters.webhook.schedule import RetrySchedule
from connectors.clock import FakeClock
from connectors.jobs import JobQueue, JobRegistry, LocalJobRunner
from connectors.secrets import Secret
from connectors.storage.db import Database
from tests.jobs._support import make_db

WHSEC = "whsec_" + base64.b64encode(b"k" * 32).decode()
PUBLIC_URL = "https://hooks.example.com/wh"


async def public_dns(host: str) -> list[str]:
    return ["93.184.216.34"]


class Audit:
    def __init__(self) -> None:
        self.events = []

    def record(self, event) -> None:
        self.events.append(event)


@dataclass
class World:
    db: Database
    clock: FakeClock
    outbox: WebhookOutbox
    endpoints: EndpointStore
    service: DeliveryService
    runner: LocalJobRunner
    queue: JobQueue
    audit: Audit
    requests: list[httpx2.Request] = field(default_factory=list)

    async def drain(self, limit: int = 100) -> None:
        """Advance the fake clock job by job until nothing is left to run."""
        for _ in range(limit):
            due = await self.queue.next_due()
            if due is None:
                return
            self.clock.advance(max(0.0, due - self.clock.time()))
            await self.runner.run_pending()

    async def close(self) -> None:
        await self.service.aclose()
        await self.db.dispose()


async def make_world(
    tmp_path: Path,
    handler,
    *,
    schedule: RetrySchedule | None = None,
    options: DeliveryOptions | None = None,
    resolver=public_dns,
) -> World:
    db = await make_db(tmp_path, "webhooks.db")
    clock = FakeClock()
    audit = Audit()
    requests: list[httpx2.Request] = []

    def record(request: httpx2.Request) -> httpx2.Response:
        requests.append(request)
        return handler(request)

    service = DeliveryService(
        db,
        secrets=StaticSecrets({"${secret:hook}": Secret(WHSEC)}),
        clock=clock,
        options=options,
        audit=audit,
        resolver=resolver,
        transport=httpx2.MockTransport(record),
    )
    registry = JobRegistry()
    register_jobs(registry)
    runner = LocalJobRunner(db, registry, clock=clock, services={SERVICE_KEY: service})
    return World(
        db=db,
        clock=clock,
        outbox=WebhookOutbox(db, clock=clock, schedule=schedule),
        endpoints=EndpointStore(db, clock=clock),
        service=service,
        runner=runner,
        queue=JobQueue(db, clock=clock),
        audit=audit,
        requests=requests,
    )

"""The periodic scheduler: once per due key, and proactive refresh ahead of expiry (FakeClock)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from connectors.auth.tokens import TokenSet
from connectors.clock import FakeClock
from connectors.jobs.queue import JobQueue
from connectors.jobs.runner import LocalJobRunner
from connectors.jobs.select import default_registry
from connectors.rotation import PeriodicScheduler, PolicyStore, ProbeSchedule, RotationPolicy
from connectors.rotation.jobs import SERVICE_KEY
from tests.rotation._provider import Provider, RefreshGrant
from tests.rotation.test_engine import TENANT, make_engine, make_hub


def test_a_due_rotation_is_enqueued_once_however_often_it_ticks(tmp_path: Path) -> None:
    clock = FakeClock()
    hub = make_hub(tmp_path, Provider(clock), {})

    async def main() -> None:
        await hub.start()
        db = hub.services.database
        policies = PolicyStore(db, clock=clock)
        await policies.set(TENANT, RotationPolicy("hooks", "webhook_secret", interval=3600))
        scheduler = PeriodicScheduler(JobQueue(db, clock=clock), policies, clock=clock)
        assert await scheduler.tick() == []
        clock.advance(3600)
        first, second = await scheduler.tick(), await scheduler.tick()
        assert [s.job for s in first] == ["rotation.rotate"]
        assert first == second  # the same job, found by its dedupe key
        jobs = await JobQueue(db).list(name="rotation.rotate")
        assert len(jobs) == 1
        assert jobs[0].args == {"tenant": TENANT, "credential": "hooks"}
        await policies.mark_rotated(TENANT, "hooks")
        assert await scheduler.tick() == []
        await hub.aclose()

    asyncio.run(main())


def test_probes_are_enqueued_once_per_interval_slot(tmp_path: Path) -> None:
    clock = FakeClock(wall_start=1_700_000_000.0)
    hub = make_hub(tmp_path, Provider(clock), {})

    async def main() -> None:
        await hub.start()
        db = hub.services.database
        scheduler = PeriodicScheduler(
            JobQueue(db, clock=clock),
            PolicyStore(db, clock=clock),
            probes=[ProbeSchedule(TENANT, "ping", interval=60)],
            clock=clock,
        )
        ids = {(await scheduler.tick())[0].job_id for _ in range(3)}
        clock.advance(60)
        ids |= {(await scheduler.tick())[0].job_id for _ in range(3)}
        assert len(ids) == 2
        await hub.aclose()

    asyncio.run(main())


def test_a_token_is_refreshed_ahead_of_its_expiry(tmp_path: Path) -> None:
    clock = FakeClock()
    provider = Provider(clock)
    hub = make_hub(tmp_path, provider, {"oauth_credential": "oauth"})

    async def main() -> None:
        await hub.start()
        db = hub.services.database
        token = TokenSet.from_response(provider.issue(lifetime=3600), clock.time())
        await hub.tokens.install(TENANT, "oauth", token)
        hub.tokens.register(TENANT, "oauth", RefreshGrant(provider))
        policies = PolicyStore(db, clock=clock)
        await policies.set(
            TENANT, RotationPolicy("oauth", "oauth_refresh", connector="ping", refresh_ahead=300)
        )
        queue = JobQueue(db, clock=clock)
        scheduler = PeriodicScheduler(queue, policies, hub.services.credentials, clock=clock)
        engine, _ = make_engine(hub, provider)
        runner = LocalJobRunner(db, default_registry(), services={SERVICE_KEY: engine}, clock=clock)
        clock.advance(3000)  # 10 minutes left: not yet inside the 5-minute margin
        assert await scheduler.tick() == []
        clock.advance(301)  # 299 s left
        assert [s.job for s in await scheduler.tick()] == ["tokens.refresh"]
        assert len(await scheduler.tick()) == 1  # still one job (same version)
        assert await runner.run_pending() == 1
        stored = await hub.tokens.store.load(TENANT, "oauth")
        assert stored is not None
        assert stored.token.expires_at is not None
        assert provider.refreshes == 1
        assert stored.token.expires_at > clock.time() + 3000, "renewed before it expired"
        assert not token.is_expired(clock.time())
        assert await scheduler.tick() == []
        await hub.aclose()

    asyncio.run(main())


def test_an_unused_refresh_token_is_kept_alive(tmp_path: Path) -> None:
    clock = FakeClock()
    provider = Provider(clock)
    hub = make_hub(tmp_path, provider, {"oauth_credential": "oauth"})

    async def main() -> None:
        await hub.start()
        db = hub.services.database
        body = provider.issue()
        body.pop("expires_in")  # a token without a known lifetime
        await hub.tokens.install(TENANT, "oauth", TokenSet.from_response(body, clock.time()))
        policies = PolicyStore(db, clock=clock)
        await policies.set(
            TENANT,
            RotationPolicy("oauth", "oauth_refresh", connector="ping", refresh_if_unused=7 * 86400),
        )
        scheduler = PeriodicScheduler(
            JobQueue(db, clock=clock), policies, hub.services.credentials, clock=clock
        )
        clock.advance(6 * 86400)
        assert await scheduler.tick() == []
        clock.advance(86400)
        assert [s.job for s in await scheduler.tick()] == ["tokens.refresh"]
        await hub.aclose()

    asyncio.run(main())

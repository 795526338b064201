"""The periodic scheduler: turns policies and probe intervals into queued jobs, once per due key.

Each :meth:`PeriodicScheduler.tick` looks at what is due *now* and enqueues a job with a
dedupe key naming the occurrence, so however many processes tick, at most one job exists per
``(kind, key)`` occurrence:

==========================  ======================================================================
due when                    dedupe key
==========================  ======================================================================
rotation ``next_due_at``    ``periodic:rotate:{tenant}:{credential}:{next_due_at}``
token expiry − ahead, or    ``periodic:refresh:{tenant}:{credential}:v{version}`` (one per token
unused for N seconds        version: a refresh makes a new version, hence a new key)
probe every ``interval``    ``periodic:probe:{tenant}:{connector}:{slot}`` (slot = now // interval)
==========================  ======================================================================

It writes to the job table (``connector_jobs``), which is also what the procrastinate runner
relays from, so the same scheduler serves both runners. All waiting is on the injected clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from connectors.clock import Clock, system_clock
from connectors.errors import CredentialMissing
from connectors.jobs.queue import JobQueue
from connectors.observability.logging import get_logger
from connectors.rotation.jobs import PROBE_JOB, REFRESH_JOB, ROTATE_JOB
from connectors.rotation.store import PolicyStore, StoredPolicy
from connectors.secrets.store import CredentialStore

__all__ = ["PeriodicScheduler", "ProbeSchedule", "Scheduled"]

_MAX_KEY: Final = 200
_log = get_logger("connectors.scheduler")


@dataclass(frozen=True, slots=True)
class ProbeSchedule:
    """Probe ``connector`` for ``tenant`` every ``interval`` seconds."""

    tenant: str
    connector: str
    interval: float = 60.0


@dataclass(frozen=True, slots=True)
class Scheduled:
    """One job a tick enqueued (or found already queued)."""

    job: str
    key: str
    job_id: int


class PeriodicScheduler:
    """Enqueues due rotations, proactive token refreshes and health probes."""

    def __init__(
        self,
        queue: JobQueue,
        policies: PolicyStore,
        credentials: CredentialStore | None = None,
        *,
        probes: Sequence[ProbeSchedule] = (),
        clock: Clock = system_clock,
    ) -> None:
        self.queue = queue
        self.policies = policies
        self.credentials = credentials
        self.probes = tuple(probes)
        self.clock = clock

    async def tick(self) -> list[Scheduled]:
        """Enqueue everything due now; returns what was scheduled (dedupes included)."""
        now = self.clock.time()
        scheduled: list[Scheduled] = []
        for stored in await self.policies.list():
            scheduled += await self._policy(stored, now)
        for probe in self.probes:
            slot = int(now // probe.interval)
            key = f"periodic:probe:{probe.tenant}:{probe.connector}:{slot}"
            scheduled.append(
                await self._enqueue(
                    PROBE_JOB, {"tenant": probe.tenant, "connector": probe.connector}, key, probe
                )
            )
        return scheduled

    async def run(self, interval: float = 30.0) -> None:
        """Tick every ``interval`` seconds until cancelled; a failed tick is logged, not fatal."""
        while True:
            try:
                await self.tick()
            except Exception as exc:
                _log.warning("scheduler.tick_failed", error=type(exc).__name__)
            await self.clock.sleep(interval)

    async def _policy(self, stored: StoredPolicy, now: float) -> list[Scheduled]:
        policy, tenant = stored.policy, stored.tenant
        args = {"tenant": tenant, "credential": policy.credential}
        found: list[Scheduled] = []
        if stored.next_due_at is not None and stored.next_due_at <= now:
            key = f"periodic:rotate:{tenant}:{policy.credential}:{stored.next_due_at:.0f}"
            found.append(await self._enqueue(ROTATE_JOB, args, key, tenant))
        if policy.kind == "oauth_refresh" and self.credentials is not None:
            due = await self._refresh_due(stored, now)
            if due is not None:
                key = f"periodic:refresh:{tenant}:{policy.credential}:v{due}"
                found.append(await self._enqueue(REFRESH_JOB, args, key, tenant))
        return found

    async def _refresh_due(self, stored: StoredPolicy, now: float) -> int | None:
        """The token version to refresh if its refresh is due, else ``None``."""
        assert self.credentials is not None
        policy = stored.policy
        try:
            cred = await self.credentials.get(stored.tenant, policy.credential, fresh=True)
        except CredentialMissing:
            return None
        if cred.metadata.get("needs_reauth") is True:
            return None
        expires_at = cred.metadata.get("expires_at")
        numeric = isinstance(expires_at, int | float) and not isinstance(expires_at, bool)
        if numeric and float(expires_at) - policy.refresh_ahead <= now:  # type: ignore[arg-type]
            return cred.version
        unused = policy.refresh_if_unused
        if unused is not None and cred.updated_at.timestamp() + unused <= now:
            return cred.version
        return None

    async def _enqueue(self, job: str, args: dict[str, str], key: str, owner: object) -> Scheduled:
        tenant = args.get("tenant")
        key = key[:_MAX_KEY]
        job_id = await self.queue.enqueue(job, args, tenant=tenant, dedupe_key=key)
        return Scheduled(job, key, job_id)

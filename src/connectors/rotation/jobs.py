"""Rotation, token refresh and health probes as job functions (any runner calls them by name).

==========================  ==============================================  ===================
job                         arguments (JSON)                                service
==========================  ==============================================  ===================
``rotation.rotate``         ``tenant``, ``credential``                      ``rotation``
``rotation.revoke_old``     ``tenant``, ``credential``                      ``rotation``
``tokens.refresh``          ``tenant``, ``credential``                      ``rotation``
``health.probe``            ``tenant``, ``connector``                       ``probe``
==========================  ==============================================  ===================

The policy is read from the policy table when the job runs (so a changed policy applies to
queued jobs). A revocation that runs before its grace window ends reschedules itself.
"""

from __future__ import annotations

from typing import Final, Protocol

from connectors.errors import NotFound
from connectors.jobs.registry import JobArgs, JobContext, JobFailed, JobRegistry, RetryJob
from connectors.rotation.engine import REVOKE_JOB, RotationEngine
from connectors.rotation.store import PolicyStore

__all__ = [
    "PROBE_JOB",
    "PROBE_SERVICE",
    "REFRESH_JOB",
    "REVOKE_JOB",
    "ROTATE_JOB",
    "SERVICE_KEY",
    "Prober",
    "register_jobs",
]

ROTATE_JOB: Final = "rotation.rotate"
REFRESH_JOB: Final = "tokens.refresh"
PROBE_JOB: Final = "health.probe"
#: Where the runner's services hold the :class:`RotationEngine`.
SERVICE_KEY: Final = "rotation"
#: Where the runner's services hold the :class:`Prober`.
PROBE_SERVICE: Final = "probe"


class Prober:
    """Runs a connector's ``health_check()`` for a tenant (the Hub's health trackers keep it)."""

    def __init__(self, probe: _ProbeFn) -> None:
        self._probe = probe

    async def probe(self, tenant: str, connector: str) -> None:
        await self._probe(tenant, connector)


class _ProbeFn(Protocol):
    async def __call__(self, tenant: str, connector: str) -> None: ...


def _text(args: JobArgs, key: str, job: str) -> str:
    value = args.get(key)
    if not isinstance(value, str) or not value:
        raise JobFailed(f"{job} needs a non-empty {key!r} string")
    return value


async def _policy(engine: RotationEngine, tenant: str, credential: str, job: str) -> PolicyStore:
    if engine.policies is None:
        raise JobFailed(f"{job}: the rotation engine has no policy store")
    return engine.policies


async def rotate_job(ctx: JobContext, args: JobArgs) -> None:
    """Rotate ``credential`` of ``tenant`` per its stored policy."""
    tenant, credential = _text(args, "tenant", ROTATE_JOB), _text(args, "credential", ROTATE_JOB)
    engine = ctx.service(SERVICE_KEY, RotationEngine)
    store = await _policy(engine, tenant, credential, ROTATE_JOB)
    try:
        stored = await store.get(tenant, credential)
    except NotFound as exc:
        raise JobFailed(exc.message) from None
    await engine.rotate(tenant, stored.policy, actor="scheduler")


async def revoke_job(ctx: JobContext, args: JobArgs) -> None:
    """End the grace window of ``credential``; early runs reschedule themselves."""
    tenant, credential = _text(args, "tenant", REVOKE_JOB), _text(args, "credential", REVOKE_JOB)
    engine = ctx.service(SERVICE_KEY, RotationEngine)
    store = await _policy(engine, tenant, credential, REVOKE_JOB)
    try:
        stored = await store.get(tenant, credential)
    except NotFound as exc:
        raise JobFailed(exc.message) from None
    result = await engine.revoke_old(tenant, stored.policy, actor="scheduler")
    if result.outcome == "skipped" and result.revoke_at is not None:
        raise RetryJob(max(1.0, result.revoke_at - ctx.clock.time()), "grace window still open")


async def refresh_job(ctx: JobContext, args: JobArgs) -> None:
    """Refresh an OAuth token set ahead of expiry (or to keep an unused refresh token alive)."""
    tenant, credential = _text(args, "tenant", REFRESH_JOB), _text(args, "credential", REFRESH_JOB)
    engine = ctx.service(SERVICE_KEY, RotationEngine)
    store = await _policy(engine, tenant, credential, REFRESH_JOB)
    try:
        stored = await store.get(tenant, credential)
    except NotFound as exc:
        raise JobFailed(exc.message) from None
    await engine.refresh_token(tenant, stored.policy, actor="scheduler")


async def probe_job(ctx: JobContext, args: JobArgs) -> None:
    """Probe one connector for one tenant."""
    tenant, connector = _text(args, "tenant", PROBE_JOB), _text(args, "connector", PROBE_JOB)
    await ctx.service(PROBE_SERVICE, Prober).probe(tenant, connector)


def register_jobs(registry: JobRegistry) -> None:
    """Register the rotation, refresh and probe job functions (idempotent)."""
    if ROTATE_JOB not in registry:
        registry.register(ROTATE_JOB, rotate_job, retry_delays=(60.0, 600.0, 3600.0))
    if REVOKE_JOB not in registry:
        registry.register(REVOKE_JOB, revoke_job, retry_delays=(30.0, 300.0, 1800.0, 3600.0))
    if REFRESH_JOB not in registry:
        registry.register(REFRESH_JOB, refresh_job, retry_delays=(10.0, 60.0, 300.0))
    if PROBE_JOB not in registry:
        registry.register(PROBE_JOB, probe_job, retry_delays=())

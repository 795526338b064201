"""The health model the API and dashboard show: one view per tenant × connector.

A :class:`ConnectorHealth` gathers, without calling the provider:

- recent calls (:class:`~connectors.observability.health.HealthTracker`): error rate over five
  minutes, p95 latency, last success and failure, the sparkline series;
- the circuit breaker (:meth:`~connectors.resilience.Pipeline.breaker_snapshot`), its monotonic
  times turned into wall-clock times;
- the OAuth credential's state from its stored, non-secret metadata (``expires_at``,
  ``needs_reauth``): ``valid``, ``expiring``, ``expired``, ``needs_reauth`` or ``unknown``;
- the remaining provider quota (``connector_rate_limit_remaining``) and local rate-limit room;
- the last periodic probe (:mod:`connectors.server.probes`).

Its ``status`` is the worst of: the tracker's status, the probe's, the circuit (open →
unhealthy, half-open → degraded) and the credential (needs re-authorisation → unhealthy,
expired → degraded). ``reasons`` says which of them made it so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from connectors.clock import Clock
from connectors.config.definition import ConnectorDefinition
from connectors.errors import ConfigurationError, ConnectorError
from connectors.hub import Hub, build_policy
from connectors.observability.health import Health, HealthSnapshot, HealthStatus, JSONValue
from connectors.resilience import Pipeline
from connectors.secrets.credential import CredentialInfo
from connectors.server.settings import ServerSettings
from connectors.state.base import BreakerSnapshot, BreakerState

__all__ = [
    "AuthState",
    "AuthView",
    "CircuitView",
    "ConnectorHealth",
    "HealthModel",
    "ProbeResult",
    "auth_view",
]

_SECRET_REF = re.compile(r"\$\{secret:([^}#]+)(?:#[^}]*)?\}")

AuthState = Literal["valid", "expiring", "expired", "needs_reauth", "unknown"]


@dataclass(frozen=True, slots=True)
class AuthView:
    """The connector's credential as far as metadata tells (never a value)."""

    state: AuthState
    credential: str | None
    expires_at: float | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, JSONValue]:
        return {
            "state": self.state,
            "credential": self.credential,
            "expires_at": self.expires_at,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class CircuitView:
    """The breaker of one tenant and connector; times are Unix seconds."""

    state: str
    calls: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    opened_at: float | None = None
    next_probe_at: float | None = None

    def to_dict(self) -> dict[str, JSONValue]:
        return {
            "state": self.state,
            "calls": self.calls,
            "failures": self.failures,
            "consecutive_failures": self.consecutive_failures,
            "opened_at": self.opened_at,
            "next_probe_at": self.next_probe_at,
        }


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One ``health_check()`` run by the prober or on demand."""

    health: Health
    at: float
    duration: float
    error: str | None = None

    def to_dict(self) -> dict[str, JSONValue]:
        return {
            "status": self.health.status.value,
            "at": self.at,
            "duration_seconds": round(self.duration, 6),
            "error": self.error,
            "checks": [
                {"name": c.name, "status": c.status.value, "detail": c.detail}
                for c in self.health.checks
            ],
        }


@dataclass(frozen=True, slots=True)
class ConnectorHealth:
    """Everything known about one connector for one tenant."""

    tenant: str
    connector: str
    status: HealthStatus
    reasons: tuple[str, ...]
    auth: AuthView
    circuit: CircuitView
    quota: Mapping[str, float]
    recent: HealthSnapshot
    probe: ProbeResult | None = None

    def to_dict(self, *, series: bool = True) -> dict[str, JSONValue]:
        recent = self.recent
        out: dict[str, JSONValue] = {
            "tenant": self.tenant,
            "connector": self.connector,
            "status": self.status.value,
            "reasons": list(self.reasons),
            "auth": self.auth.to_dict(),
            "token_expires_at": self.auth.expires_at,
            "circuit": self.circuit.to_dict(),
            "quota_remaining": dict(self.quota),
            "calls_5m": recent.calls,
            "errors_5m": recent.errors,
            "error_rate_5m": recent.error_rate,
            "p95_seconds": recent.p95,
            "last_success_at": recent.last_success_at,
            "last_failure_at": recent.last_failure_at,
            "last_error_code": recent.last_error_code,
            "probe": None if self.probe is None else self.probe.to_dict(),
        }
        if series:
            out["series"] = [b.to_dict() for b in recent.series]
        return out


def auth_view(
    info: CredentialInfo | None, *, now: float, expiring_within: float, name: str | None
) -> AuthView:
    """The auth state from a credential's metadata (pure)."""
    if info is None:
        return AuthView("unknown", name, None, "no credential stored under this name")
    meta = info.metadata
    expires = meta.get("expires_at")
    expires_at = float(expires) if isinstance(expires, int | float) and expires else None
    if meta.get("needs_reauth") is True:
        reason = meta.get("reauth_reason")
        detail = str(reason) if isinstance(reason, str) else "the grant was revoked or expired"
        return AuthView("needs_reauth", info.name, expires_at, detail)
    if expires_at is None:
        return AuthView("valid", info.name, None, "no expiry known")
    if expires_at <= now:
        return AuthView("expired", info.name, expires_at, "renewed on the next call if possible")
    if expires_at - now <= expiring_within:
        return AuthView("expiring", info.name, expires_at, "renewed before use")
    return AuthView("valid", info.name, expires_at, "")


def _circuit(snap: BreakerSnapshot, clock: Clock) -> CircuitView:
    offset = clock.time() - clock.monotonic()
    return CircuitView(
        state=str(snap.state.value),
        calls=snap.calls,
        failures=snap.failures,
        consecutive_failures=snap.consecutive_failures,
        opened_at=None if snap.opened_at is None else snap.opened_at + offset,
        next_probe_at=None if snap.next_probe_at is None else snap.next_probe_at + offset,
    )


@dataclass
class HealthModel:
    """Builds :class:`ConnectorHealth` views from a Hub; holds the latest probe results."""

    hub: Hub
    settings: ServerSettings
    probes: dict[tuple[str, str], ProbeResult] = field(default_factory=dict)

    # --- which connectors a tenant sees ----------------------------------------------------------

    def connector_names(self) -> list[str]:
        """Every connector the server shows."""
        if self.settings.connectors is not None:
            return list(dict.fromkeys(self.settings.connectors))
        if self.hub.definitions:
            return sorted(self.hub.definitions)
        return self.hub.registry.names()

    def connectors_for(self, tenant: str) -> list[str]:
        """The connectors visible to ``tenant`` (a name outside this list is a 404 for it)."""
        narrowed: Sequence[str] | None = self.settings.tenant_connectors.get(tenant)
        names = self.connector_names()
        if narrowed is None:
            return names
        return [n for n in names if n in narrowed]

    def tenants(self) -> list[str]:
        """Tenants to probe: configured ones plus every tenant with recorded calls."""
        seen = dict.fromkeys(self.settings.probe_tenants)
        seen.update(dict.fromkeys(self.settings.tenant_connectors))
        for _connector, tenant in self.hub.health_trackers():
            seen.setdefault(tenant, None)
        return list(seen)

    # --- pieces ----------------------------------------------------------------------------------

    def _definition(self, name: str) -> ConnectorDefinition:
        return self.hub.definition(name)

    def pipeline(self, name: str) -> Pipeline:
        """The pipeline the Hub uses for ``name`` (breaker and limiter state per tenant)."""
        definition = self._definition(name)
        policy = build_policy(self.hub.settings, definition.resilience, None, definition)
        return self.hub.pipeline(name, policy)

    def credential_name(self, name: str) -> str:
        """The credential that authenticates ``name``: ``oauth_credential``/``credential``
        settings, else the store secret its ``token``/``api_key`` references, else the
        connector name (where the token manager keeps OAuth tokens)."""
        settings = self._definition(name).settings
        for key in ("oauth_credential", "credential"):
            value = settings.get(key)
            if isinstance(value, str) and value and "${" not in value:
                return value
        for key in ("token", "api_key", "access_token"):
            value = settings.get(key)
            match = _SECRET_REF.fullmatch(value) if isinstance(value, str) else None
            if match is not None:
                return match.group(1)
        return name

    async def _credentials(self, tenant: str) -> dict[str, CredentialInfo] | None:
        try:
            listed = await self.hub.services.credentials.list(tenant)
        except (ConfigurationError, ConnectorError):
            return None
        return {c.name: c for c in listed}

    def _quota(self, name: str, tenant: str) -> dict[str, float]:
        label = self.hub.metrics.tenant_label(tenant)
        out: dict[str, float] = {}
        for (sample, labels), value in self.hub.metrics.samples().items():
            if sample != "connector_rate_limit_remaining":
                continue
            found = dict(labels)
            if found.get("connector") == name and found.get("tenant") == label:
                out[found.get("quota", "quota")] = value
        return out

    # --- views -----------------------------------------------------------------------------------

    async def view(
        self, tenant: str, name: str, credentials: Mapping[str, CredentialInfo] | None = None
    ) -> ConnectorHealth:
        """The health of ``name`` for ``tenant``."""
        clock = self.hub.clock
        if credentials is None:
            credentials = await self._credentials(tenant)
        credential = self.credential_name(name)
        now = clock.time()
        if credentials is None:
            auth = AuthView("unknown", credential, None, "the credential store is not available")
        else:
            auth = auth_view(
                credentials.get(credential),
                now=now,
                expiring_within=self.settings.expiring_within,
                name=credential,
            )
        pipeline = self.pipeline(name)
        circuit = _circuit(await pipeline.breaker_snapshot(tenant), clock)
        quota = self._quota(name, tenant)
        for limit in pipeline.policy.rate_limits:
            quota[f"local:{limit.key}"] = round(
                await pipeline.rate_limit_remaining(tenant, limit), 3
            )
        recent = self.hub.health_tracker(name, tenant).snapshot()
        probe = self.probes.get((tenant, name))
        status, reasons = _judge(recent, probe, circuit, auth)
        return ConnectorHealth(tenant, name, status, reasons, auth, circuit, quota, recent, probe)

    async def views(self, tenant: str) -> list[ConnectorHealth]:
        """Every visible connector of ``tenant``."""
        credentials = await self._credentials(tenant)
        return [await self.view(tenant, n, credentials) for n in self.connectors_for(tenant)]


def _judge(
    recent: HealthSnapshot, probe: ProbeResult | None, circuit: CircuitView, auth: AuthView
) -> tuple[HealthStatus, tuple[str, ...]]:
    statuses: list[HealthStatus] = []
    reasons: list[str] = []
    if recent.calls:
        statuses.append(recent.status)
        if recent.status is not HealthStatus.HEALTHY:
            reasons.append(f"recent calls: {recent.detail}")
    if probe is not None:
        statuses.append(probe.health.status)
        if probe.health.status is not HealthStatus.HEALTHY:
            reasons.append(f"probe: {probe.error or probe.health.status.value}")
    if circuit.state in (BreakerState.OPEN.value, BreakerState.FORCED_OPEN.value):
        statuses.append(HealthStatus.UNHEALTHY)
        reasons.append("circuit open")
    elif circuit.state == BreakerState.HALF_OPEN.value:
        statuses.append(HealthStatus.DEGRADED)
        reasons.append("circuit half-open")
    if auth.state == "needs_reauth":
        statuses.append(HealthStatus.UNHEALTHY)
        reasons.append("credential needs re-authorisation")
    elif auth.state == "expired":
        statuses.append(HealthStatus.DEGRADED)
        reasons.append("token expired")
    if not statuses:
        return HealthStatus.UNKNOWN, ("no calls and no probe yet",)
    return HealthStatus.worst(statuses), tuple(reasons)

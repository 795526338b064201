"""Webhook endpoints: a tenant's targets, their secrets (by reference) and SSRF allowlists.

An endpoint's secrets are stored as references (``${secret:webhooks/orders}``, ``${env:NAME}``),
newest first; the delivery resolves them for the endpoint's tenant through a
:class:`SecretSource` (the Hub's resolver registry), so a secret value never enters the webhook
tables, a log line or an error. Several references mean a rotation is in progress: every one
signs (Standard Webhooks sends one signature per secret).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.adapters.webhook.signing import HmacScheme, SigningScheme
from connectors.adapters.webhook.tables import WebhookEndpointRow
from connectors.clock import Clock, system_clock
from connectors.errors import CredentialMissing, InvalidRequest, NotFound
from connectors.http.ssrf import SsrfGuard, SsrfPolicy, parse_ipv4_literal
from connectors.secrets.refs import SecretRef, parse_ref
from connectors.secrets.secret import Secret
from connectors.storage.db import Database

__all__ = [
    "Endpoint",
    "EndpointStore",
    "SecretSource",
    "StaticSecrets",
    "endpoint_from_row",
    "resolve_secrets",
]


class SecretSource(Protocol):
    """Resolves a reference for a tenant (``connectors.secrets.ResolverRegistry`` is one)."""

    async def resolve(self, ref: SecretRef, *, tenant: str) -> Secret: ...


class StaticSecrets:
    """A fixed map of reference text to secret, for tests, benchmarks and single-tenant scripts.

    Keys are the references as written (``"${secret:hooks}"``); the tenant is part of the key
    when given as ``(tenant, ref)``.
    """

    def __init__(self, values: Mapping[str, Secret] | None = None) -> None:
        self._values: dict[str, Secret] = dict(values or {})

    def set(self, ref: str, secret: Secret, *, tenant: str | None = None) -> None:
        self._values[f"{tenant}|{parse_ref(ref)}" if tenant else str(parse_ref(ref))] = secret

    async def resolve(self, ref: SecretRef, *, tenant: str) -> Secret:
        found = self._values.get(f"{tenant}|{ref}") or self._values.get(str(ref))
        if found is None:
            raise CredentialMissing(str(ref), tenant=tenant)
        return found


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A delivery target of one tenant."""

    id: str
    tenant: str
    url: str
    secret_refs: tuple[str, ...]
    scheme: SigningScheme = SigningScheme.STANDARD
    custom: HmacScheme | None = None
    allow_nets: tuple[str, ...] = ()
    allow_hosts: tuple[str, ...] = ()
    enabled: bool = True
    disabled_reason: str | None = None
    failing_since: float | None = None
    consecutive_dead: int = 0
    created_at: float = field(default=0.0, compare=False)

    @property
    def policy(self) -> SsrfPolicy:
        """The SSRF policy of this endpoint (public addresses plus its allowlist)."""
        return SsrfPolicy.allowing(self.allow_nets, self.allow_hosts)

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready view (secret references are names, never values)."""
        return {
            "id": self.id,
            "tenant": self.tenant,
            "url": self.url,
            "secret_refs": list(self.secret_refs),
            "scheme": self.scheme.value,
            "allow_nets": list(self.allow_nets),
            "allow_hosts": list(self.allow_hosts),
            "enabled": self.enabled,
            "disabled_reason": self.disabled_reason,
        }


async def resolve_secrets(endpoint: Endpoint, source: SecretSource) -> list[Secret]:
    """The endpoint's secrets, newest first, resolved for its tenant."""
    return [
        await source.resolve(parse_ref(ref), tenant=endpoint.tenant) for ref in endpoint.secret_refs
    ]


def endpoint_from_row(row: WebhookEndpointRow) -> Endpoint:
    custom = HmacScheme(**json.loads(row.custom)) if row.custom else None
    return Endpoint(
        id=row.id,
        tenant=row.tenant,
        url=row.url,
        secret_refs=tuple(json.loads(row.secret_refs)),
        scheme=SigningScheme(row.scheme),
        custom=custom,
        allow_nets=tuple(json.loads(row.allow_nets)),
        allow_hosts=tuple(json.loads(row.allow_hosts)),
        enabled=row.enabled,
        disabled_reason=row.disabled_reason,
        failing_since=row.failing_since,
        consecutive_dead=row.consecutive_dead,
        created_at=row.created_at,
    )


async def _precheck(url: str, policy: SsrfPolicy) -> None:
    """Refuse a bad URL at registration: syntax always, literal addresses too (no DNS)."""
    guard = SsrfGuard(policy)
    _, host, _ = guard.check_url(url)
    literal = ":" in host
    if not literal:
        try:
            literal = parse_ipv4_literal(host) is not None
        except ValueError:
            literal = True
    if literal or host == "localhost" or host.endswith(".localhost"):
        await guard.vet(url)


class EndpointStore:
    """Create, read, enable and disable endpoints (always within one tenant)."""

    def __init__(self, db: Database, *, clock: Clock = system_clock) -> None:
        self.db = db
        self.clock = clock

    async def create(
        self,
        tenant: str,
        url: str,
        secret_refs: Sequence[str],
        *,
        scheme: SigningScheme | str = SigningScheme.STANDARD,
        custom: HmacScheme | None = None,
        allow_nets: Sequence[str] = (),
        allow_hosts: Sequence[str] = (),
        endpoint_id: str | None = None,
    ) -> Endpoint:
        """Register an endpoint; the URL is checked against the SSRF rules and the allowlist."""
        scheme = SigningScheme(scheme)
        if not secret_refs:
            raise InvalidRequest("an endpoint needs at least one secret reference")
        refs = tuple(str(parse_ref(ref)) for ref in secret_refs)
        if scheme is SigningScheme.CUSTOM and custom is None:
            raise InvalidRequest("a custom signing scheme needs HmacScheme settings")
        policy = SsrfPolicy.allowing(allow_nets, allow_hosts)
        await _precheck(url, policy)
        now = self.clock.time()
        row = WebhookEndpointRow(
            id=endpoint_id or "ep_" + os.urandom(10).hex(),
            tenant=tenant,
            url=url,
            secret_refs=json.dumps(list(refs)),
            scheme=scheme.value,
            custom=json.dumps(asdict(custom)) if custom is not None else None,
            allow_nets=json.dumps(list(allow_nets)),
            allow_hosts=json.dumps(list(allow_hosts)),
            enabled=True,
            consecutive_dead=0,
            created_at=now,
            updated_at=now,
        )
        async with self.db.session() as session:
            session.add(row)
        return endpoint_from_row(row)

    async def get(
        self, tenant: str, endpoint_id: str, *, session: AsyncSession | None = None
    ) -> Endpoint:
        """The endpoint, or :class:`~connectors.errors.NotFound` (also for another tenant's)."""
        if session is not None:
            row = await session.get(WebhookEndpointRow, endpoint_id)
        else:
            async with self.db.session() as own:
                row = await own.get(WebhookEndpointRow, endpoint_id)
        if row is None or row.tenant != tenant:
            raise NotFound(f"no webhook endpoint {endpoint_id!r}", tenant=tenant)
        return endpoint_from_row(row)

    async def list(self, tenant: str) -> list[Endpoint]:
        stmt = (
            select(WebhookEndpointRow)
            .where(WebhookEndpointRow.tenant == tenant)
            .order_by(WebhookEndpointRow.created_at)
        )
        async with self.db.session() as session:
            return [endpoint_from_row(r) for r in (await session.execute(stmt)).scalars()]

    async def set_enabled(
        self, tenant: str, endpoint_id: str, enabled: bool, *, reason: str | None = None
    ) -> Endpoint:
        """Enable (clearing the failure counters) or disable an endpoint."""
        async with self.db.session() as session:
            row = await session.get(WebhookEndpointRow, endpoint_id)
            if row is None or row.tenant != tenant:
                raise NotFound(f"no webhook endpoint {endpoint_id!r}", tenant=tenant)
            row.enabled = enabled
            row.disabled_reason = None if enabled else (reason or "disabled by an operator")
            if enabled:
                row.failing_since = None
                row.consecutive_dead = 0
            row.updated_at = self.clock.time()
            return endpoint_from_row(row)

    async def set_secrets(
        self, tenant: str, endpoint_id: str, secret_refs: Sequence[str]
    ) -> Endpoint:
        """Replace the secret references (newest first) — how a rotation starts and ends."""
        if not secret_refs:
            raise InvalidRequest("an endpoint needs at least one secret reference")
        refs = [str(parse_ref(ref)) for ref in secret_refs]
        async with self.db.session() as session:
            row = await session.get(WebhookEndpointRow, endpoint_id)
            if row is None or row.tenant != tenant:
                raise NotFound(f"no webhook endpoint {endpoint_id!r}", tenant=tenant)
            row.secret_refs = json.dumps(refs)
            row.updated_at = self.clock.time()
            return endpoint_from_row(row)

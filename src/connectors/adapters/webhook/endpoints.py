"""Webhook endpoints: a tenant's targets, their secrets (by reference) and SSRF allowlists.

An endpoint's secrets are stored as references (``${secret:webhooks/orders}``, ``${env:NAME}``),
newest first; the delivery resolves them for the endpoint's tenant through a
:class:`SecretSource` (the Hub's resolver registry), so a secret value never enters the webhook
tables, a log line or an error. Several references mean a rotation is in progress: every one
signs (Standard Webhooks sends one signature per secret).

A delivery worker resolves through a :class:`SigningCache`: an endpoint's secrets, resolved for
its tenant, and the HMAC keys derived from them are kept for a short ``ttl`` under the key
``(tenant, references, scheme)``, so two tenants never share an entry and an endpoint whose
references change (a rotation) misses the cache at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from connectors.adapters.webhook.signing import (
    HmacScheme,
    SigningScheme,
    decode_whsec,
    sign_headers,
)
from connectors.adapters.webhook.tables import WebhookEndpointRow
from connectors.clock import Clock, system_clock
from connectors.errors import CredentialMissing, InvalidRequest, NotFound
from connectors.http.ssrf import SsrfGuard, SsrfPolicy, parse_ipv4_literal
from connectors.secrets.refs import SecretRef, parse_ref
from connectors.secrets.secret import Secret
from connectors.storage.db import Database

__all__ = [
    "Endpoint",
    "EndpointSigner",
    "EndpointStore",
    "SecretSource",
    "SigningCache",
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


class EndpointSigner:
    """Signs deliveries for one endpoint with secrets resolved beforehand.

    For the Standard Webhooks scheme the HMAC key of each secret is decoded once and kept as a
    keyed ``hmac`` object, copied per message; other schemes sign through
    :func:`~connectors.adapters.webhook.signing.sign_headers`. The output is the same either way.
    """

    __slots__ = ("_custom", "_keyed", "_scheme", "_secrets")

    def __init__(
        self, scheme: SigningScheme, secrets: Sequence[Secret], custom: HmacScheme | None
    ) -> None:
        self._scheme = scheme
        self._secrets = tuple(secrets)
        self._custom = custom
        self._keyed: tuple[hmac.HMAC, ...] = ()
        if scheme is SigningScheme.STANDARD:
            self._keyed = tuple(
                hmac.new(decode_whsec(s), digestmod=hashlib.sha256) for s in self._secrets
            )

    def __repr__(self) -> str:
        return f"EndpointSigner({self._scheme.value}, {len(self._secrets)} secret(s))"

    def headers(self, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
        """``webhook-id``, ``webhook-timestamp`` and the signature header(s) of one attempt."""
        if not self._keyed:
            return sign_headers(
                self._scheme, msg_id, timestamp, body, self._secrets, custom=self._custom
            )
        content = f"{msg_id}.{timestamp}.".encode() + body
        signatures = []
        for keyed in self._keyed:
            mac = keyed.copy()
            mac.update(content)
            signatures.append("v1," + base64.b64encode(mac.digest()).decode("ascii"))
        return {
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": " ".join(signatures),
        }


class SigningCache:
    """Endpoint signers by ``(tenant, secret references, scheme)``, each kept ``ttl`` seconds.

    A failed resolution (a missing secret, a malformed one) is not cached: it raises to the
    caller every time. :meth:`invalidate` forgets a tenant's entries (or all) at once, for a
    secret rotated behind an unchanged reference.
    """

    def __init__(self, source: SecretSource, *, clock: Clock, ttl: float = 10.0) -> None:
        self.source = source
        self.clock = clock
        self.ttl = ttl
        self._entries: dict[
            tuple[str, tuple[str, ...], SigningScheme, HmacScheme | None],
            tuple[float, EndpointSigner],
        ] = {}

    async def signer(self, endpoint: Endpoint) -> EndpointSigner:
        """The endpoint's signer, resolved for its tenant (raises what the resolution raises)."""
        key = (endpoint.tenant, endpoint.secret_refs, endpoint.scheme, endpoint.custom)
        now = self.clock.monotonic()
        found = self._entries.get(key)
        if found is not None and found[0] > now:
            return found[1]
        secrets = await resolve_secrets(endpoint, self.source)
        signer = EndpointSigner(endpoint.scheme, secrets, endpoint.custom)
        if self.ttl > 0:
            if len(self._entries) > 10_000:  # bounded: forget everything rather than grow
                self._entries.clear()
            self._entries[key] = (now + self.ttl, signer)
        return signer

    def invalidate(self, tenant: str | None = None) -> None:
        """Forget ``tenant``'s signers (every tenant's for ``None``)."""
        if tenant is None:
            self._entries.clear()
            return
        for key in [k for k in self._entries if k[0] == tenant]:
            del self._entries[key]


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

"""The rotation engine: rotate, verify, commit or roll back, and later revoke the old credential.

A secret rotation (API key, webhook secret, client secret, password), under a per-credential
lease so two processes never rotate one credential at once::

    started ─ [webhook: sign with old under both refs] ─ rotator.create (old still valid)
      ─ CAS put {F: new, previous.F: old}  ─ verify (connector health_check with the new value)
      ├─ failed  ─▶ CAS put the old fields back, restore refs, rotator.discard(new) ─ rolled_back
      └─ passed  ─▶ verified ─ committed ─ job "rotation.revoke_old" at now + grace
    revoke_old:  [webhook: drop the previous ref] ─ rotator.revoke(old) ─ CAS put {F: new}
                 ─ old_revoked

An OAuth rotation is one forced refresh through the token manager (single-flight, CAS), then the
same verification and rollback. Every step is an audit event (``rotation.started``,
``rotation.verified``, ``rotation.committed``, ``rotation.rolled_back``,
``rotation.old_revoked``) with tenant, actor, credential name and versions, never a value.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal, Protocol

from connectors.adapters.webhook.endpoints import EndpointStore
from connectors.audit.events import AuditEvent, JsonValue, Outcome
from connectors.auth.grants import TokenGrant
from connectors.auth.manager import TokenManager
from connectors.auth.stores import TOKEN_FIELD
from connectors.clock import Clock, system_clock
from connectors.errors import Conflict, ConnectorError, CredentialMissing
from connectors.jobs.queue import JobQueue
from connectors.observability.logging import get_logger
from connectors.rotation.policy import RotationPolicy, previous_field
from connectors.rotation.rotators import RotationRequest, Rotator, RotatorRegistry
from connectors.rotation.store import PolicyStore
from connectors.rotation.verification import HubVerifier, Verification, Verifier
from connectors.secrets.credential import Credential, JSONValue
from connectors.secrets.secret import Secret
from connectors.secrets.store import CredentialStore
from connectors.state.base import StateBackend

if TYPE_CHECKING:
    from connectors.hub import Hub

__all__ = ["REVOKE_JOB", "AuditSink", "RotationEngine", "RotationResult"]

#: The job that ends a grace window.
REVOKE_JOB: Final = "rotation.revoke_old"
_META: Final = "rotation"

_log = get_logger("connectors.rotation")


class AuditSink(Protocol):
    """Where rotation events go (``HubServices`` and ``AuditWriter`` are sinks)."""

    def record(self, event: AuditEvent) -> None: ...


@dataclass(frozen=True, slots=True)
class RotationResult:
    """What one rotation (or revocation) did."""

    tenant: str
    credential: str
    outcome: Literal["committed", "rolled_back", "skipped", "revoked"]
    from_version: int | None
    to_version: int | None
    revoke_at: float | None = None
    detail: str = ""


GrantSource = Callable[[str, RotationPolicy], Awaitable[TokenGrant | None]]
Settings = Callable[[str], tuple[str | None, Mapping[str, object], object]]


def _plain(fields: Mapping[str, Secret]) -> dict[str, Secret]:
    return dict(fields)


def _overlap(credential: Credential) -> Mapping[str, JSONValue] | None:
    found = credential.metadata.get(_META)
    if isinstance(found, Mapping) and found.get("state") == "overlap":
        return found
    return None


def _ref(credential: str, field_name: str) -> str:
    return (
        f"${{secret:{credential}#{field_name}}}"
        if field_name != "value"
        else (f"${{secret:{credential}}}")
    )


class RotationEngine:
    """Rotates tenant credentials per :class:`RotationPolicy`; see the module docstring.

    ``connector_info(name)`` returns ``(adapter type, plain settings, transport)`` of a connector
    instance, for the rotator. ``grants(tenant, policy)`` supplies the token grant for an OAuth
    refresh when the token manager has none registered.
    """

    def __init__(
        self,
        credentials: CredentialStore | Callable[[], CredentialStore],
        *,
        audit: AuditSink,
        verifier: Verifier,
        state: StateBackend,
        rotators: RotatorRegistry | None = None,
        tokens: TokenManager | Callable[[], TokenManager] | None = None,
        endpoints: EndpointStore | None = None,
        queue: JobQueue | None = None,
        policies: PolicyStore | None = None,
        clock: Clock = system_clock,
        connector_info: Settings | None = None,
        grants: GrantSource | None = None,
        lock_ttl: float = 300.0,
    ) -> None:
        # Built on first use: a worker without a master key still runs the other jobs.
        self._credentials = credentials
        self.audit = audit
        self.verifier = verifier
        self.state = state
        self.rotators = rotators or RotatorRegistry()
        self._token_source = tokens
        self.endpoints = endpoints
        self.queue = queue
        self.policies = policies
        self.clock = clock
        self.connector_info = connector_info
        self.grants = grants
        self.lock_ttl = lock_ttl

    @property
    def credentials(self) -> CredentialStore:
        """The credential store (built on first use when given as a factory)."""
        if not isinstance(self._credentials, CredentialStore):
            self._credentials = self._credentials()
        return self._credentials

    @property
    def tokens(self) -> TokenManager | None:
        """The token manager, if any (built on first use when given as a factory)."""
        if self._token_source is not None and not isinstance(self._token_source, TokenManager):
            self._token_source = self._token_source()
        return self._token_source

    @classmethod
    def for_hub(cls, hub: Hub, *, rotators: RotatorRegistry | None = None) -> RotationEngine:
        """An engine over the Hub's store, tokens, audit, state, job table and connectors."""
        services = hub.services

        def info(name: str) -> tuple[str | None, Mapping[str, object], object]:
            definition = hub.definition(name)
            plain = {
                k: v
                for k, v in definition.settings.items()
                if not (isinstance(v, str) and "${" in v)
            }
            return definition.type, plain, hub.transports.get(name)

        return cls(
            lambda: services.credentials,
            audit=services,
            verifier=HubVerifier(hub),
            state=hub.state,
            rotators=rotators,
            tokens=lambda: hub.tokens,
            endpoints=EndpointStore(services.database, clock=hub.clock),
            queue=JobQueue(services.database, clock=hub.clock),
            policies=PolicyStore(services.database, clock=hub.clock),
            clock=hub.clock,
            connector_info=info,
        )

    # --- public ---------------------------------------------------------------------------------

    async def rotate(
        self, tenant: str, policy: RotationPolicy, *, actor: str = "rotation"
    ) -> RotationResult:
        """Rotate now. Returns ``committed``, ``rolled_back`` or ``skipped`` (a previous
        rotation's grace window is still open); raises :class:`Conflict` if another process is
        rotating the credential right now."""
        async with self._lease(tenant, policy.credential):
            old = await self.credentials.get(tenant, policy.credential, fresh=True)
            window = _overlap(old)
            if window is not None:
                return RotationResult(
                    tenant,
                    policy.credential,
                    "skipped",
                    old.version,
                    None,
                    _float(window.get("revoke_at")),
                    "the previous rotation's grace window is still open",
                )
            self._event("rotation.started", tenant, actor, policy, from_version=old.version)
            if policy.kind == "oauth_refresh":
                return await self._rotate_token(tenant, policy, old, actor)
            return await self._rotate_secret(tenant, policy, old, actor)

    async def revoke_old(
        self, tenant: str, policy: RotationPolicy, *, actor: str = "rotation", early: bool = False
    ) -> RotationResult:
        """End the grace window: revoke the old secret and drop it from the store.

        Before ``revoke_at`` this does nothing unless ``early``; ``skipped`` when no grace
        window is open.
        """
        async with self._lease(tenant, policy.credential):
            cred = await self.credentials.get(tenant, policy.credential, fresh=True)
            window = _overlap(cred)
            if window is None:
                return RotationResult(
                    tenant, policy.credential, "skipped", cred.version, None, None, "no overlap"
                )
            revoke_at = _float(window.get("revoke_at"))
            if not early and revoke_at is not None and self.clock.time() < revoke_at:
                return RotationResult(
                    tenant,
                    policy.credential,
                    "skipped",
                    cred.version,
                    None,
                    revoke_at,
                    "the grace window is still open",
                )
            field_name = str(window.get("field") or policy.field)
            prev = previous_field(field_name)
            old = cred.fields.get(prev)
            if policy.endpoints and self.endpoints is not None:
                for endpoint_id in policy.endpoints:
                    endpoint = await self.endpoints.get(tenant, endpoint_id)
                    kept = [r for r in endpoint.secret_refs if r != _ref(policy.credential, prev)]
                    await self.endpoints.set_secrets(tenant, endpoint_id, kept)
            if old is not None and policy.kind != "oauth_refresh":
                rotator = self._rotator(policy)
                await rotator.revoke(self._request(tenant, policy, cred, field_name), old)
            fields = {k: v for k, v in cred.fields.items() if k != prev}
            metadata = {k: v for k, v in cred.metadata.items() if k != _META}
            metadata["rotated_at"] = self.clock.time()
            version = await self.credentials.put(
                tenant,
                policy.credential,
                fields,
                metadata=metadata,
                actor=actor,
                expected_version=cred.version,
            )
            self._event(
                "rotation.old_revoked",
                tenant,
                actor,
                policy,
                from_version=cred.version,
                to_version=version,
            )
            return RotationResult(tenant, policy.credential, "revoked", cred.version, version)

    async def refresh_token(
        self, tenant: str, policy: RotationPolicy, *, actor: str = "rotation"
    ) -> int:
        """Refresh an OAuth token set now (proactive renewal or keep-alive); the new version.

        The token manager audits it (``token.refresh``); no verification or rollback.
        """
        tokens = self._tokens()
        stored = await tokens.store.load(tenant, policy.credential)
        if stored is None:
            raise CredentialMissing(policy.credential, tenant=tenant)
        grant = None if self.grants is None else await self.grants(tenant, policy)
        tokens.forget(tenant, policy.credential)
        await tokens.refresh(tenant, policy.credential, stale=stored.token, grant=grant)
        latest = await tokens.store.load(tenant, policy.credential)
        return stored.version if latest is None else latest.version

    # --- secrets --------------------------------------------------------------------------------

    async def _rotate_secret(
        self, tenant: str, policy: RotationPolicy, old: Credential, actor: str
    ) -> RotationResult:
        name, field_name = policy.credential, policy.field
        prev = previous_field(field_name)
        current = old.secret(field_name)
        rotator = self._rotator(policy)
        request = self._request(tenant, policy, old, field_name)
        version = old.version
        refs_before: dict[str, tuple[str, ...]] = {}
        if policy.endpoints and self.endpoints is not None:
            # Phase 1: the old value under both references, so that once the new value lands
            # every delivery carries a signature the receiver already knows.
            version = await self.credentials.put(
                tenant,
                name,
                {**_plain(old.fields), prev: current},
                metadata=dict(old.metadata),
                actor=actor,
                expected_version=version,
            )
            for endpoint_id in policy.endpoints:
                endpoint = await self.endpoints.get(tenant, endpoint_id)
                refs_before[endpoint_id] = endpoint.secret_refs
                extra = _ref(name, prev)
                if extra not in endpoint.secret_refs:
                    await self.endpoints.set_secrets(
                        tenant, endpoint_id, [*endpoint.secret_refs, extra]
                    )
        try:
            new = await rotator.create(request)
        except Exception as exc:
            await self._restore(tenant, policy, old, version, refs_before, actor)
            return self._rolled_back(tenant, actor, policy, old, None, f"create failed: {exc}")
        now = self.clock.time()
        revoke_at = now + policy.grace
        metadata: dict[str, JSONValue] = {
            **dict(old.metadata),
            _META: {
                "state": "overlap",
                "kind": policy.kind,
                "field": field_name,
                "from_version": old.version,
                "started_at": now,
                "revoke_at": revoke_at,
            },
        }
        try:
            new_version = await self.credentials.put(
                tenant,
                name,
                {**_plain(old.fields), field_name: new, prev: current},
                metadata=metadata,
                actor=actor,
                expected_version=version,
            )
        except Conflict:
            await self._discard(rotator, request, new)
            await self._restore(tenant, policy, old, None, refs_before, actor)
            raise
        verdict = await self._verify(tenant, policy)
        if not verdict.ok:
            await self._restore(tenant, policy, old, new_version, refs_before, actor)
            await self._discard(rotator, request, new)
            return self._rolled_back(tenant, actor, policy, old, new_version, verdict.detail)
        self._event(
            "rotation.verified",
            tenant,
            actor,
            policy,
            from_version=old.version,
            to_version=new_version,
            detail=verdict.detail,
        )
        if self.queue is not None:
            await self.queue.enqueue(
                REVOKE_JOB,
                {"tenant": tenant, "credential": name},
                run_at=revoke_at,
                tenant=tenant,
                dedupe_key=f"rotation:revoke:{tenant}:{name}:{new_version}"[:200],
            )
        await self._committed(tenant, actor, policy, old.version, new_version)
        return RotationResult(tenant, name, "committed", old.version, new_version, revoke_at)

    async def _restore(
        self,
        tenant: str,
        policy: RotationPolicy,
        old: Credential,
        live_version: int | None,
        refs_before: Mapping[str, tuple[str, ...]],
        actor: str,
    ) -> None:
        """Put the pre-rotation credential back (CAS on ``live_version``, ``None``: whatever
        is live) and the endpoints' references; the old value signs throughout."""
        name = policy.credential
        prev = previous_field(policy.field)
        if live_version is None:
            live_version = (await self.credentials.get(tenant, name, fresh=True)).version
        if refs_before and self.endpoints is not None:
            live_version = await self.credentials.put(
                tenant,
                name,
                {**_plain(old.fields), prev: old.secret(policy.field)},
                metadata=dict(old.metadata),
                actor=actor,
                expected_version=live_version,
            )
            for endpoint_id, refs in refs_before.items():
                await self.endpoints.set_secrets(tenant, endpoint_id, list(refs))
        if live_version != old.version:
            await self.credentials.put(
                tenant,
                name,
                _plain(old.fields),
                metadata=dict(old.metadata),
                actor=actor,
                expected_version=live_version,
            )

    async def _discard(self, rotator: Rotator, request: RotationRequest, new: Secret) -> None:
        try:
            await rotator.discard(request, new)
        except Exception as exc:  # the new secret stays valid at the provider: say so
            _log.warning(
                "rotation.discard_failed",
                tenant=request.tenant,
                credential=request.credential,
                error=type(exc).__name__,
            )

    # --- OAuth ----------------------------------------------------------------------------------

    async def _rotate_token(
        self, tenant: str, policy: RotationPolicy, old: Credential, actor: str
    ) -> RotationResult:
        if TOKEN_FIELD not in old.fields:
            raise CredentialMissing(f"{policy.credential}#{TOKEN_FIELD}", tenant=tenant)
        try:
            new_version = await self.refresh_token(tenant, policy, actor=actor)
        except ConnectorError as exc:
            return self._rolled_back(tenant, actor, policy, old, None, f"refresh: {exc.code}")
        verdict = await self._verify(tenant, policy)
        if not verdict.ok:
            await self.credentials.put(
                tenant,
                policy.credential,
                _plain(old.fields),
                metadata=dict(old.metadata),
                actor=actor,
                expected_version=new_version,
            )
            self._tokens().forget(tenant, policy.credential)
            return self._rolled_back(tenant, actor, policy, old, new_version, verdict.detail)
        self._event(
            "rotation.verified",
            tenant,
            actor,
            policy,
            from_version=old.version,
            to_version=new_version,
            detail=verdict.detail,
        )
        await self._committed(tenant, actor, policy, old.version, new_version)
        return RotationResult(tenant, policy.credential, "committed", old.version, new_version)

    # --- helpers --------------------------------------------------------------------------------

    def _tokens(self) -> TokenManager:
        if self.tokens is None:
            raise ConnectorError("rotating an OAuth credential needs the token manager")
        return self.tokens

    def _rotator(self, policy: RotationPolicy) -> Rotator:
        connector_type = None
        if policy.connector is not None and self.connector_info is not None:
            connector_type = self.connector_info(policy.connector)[0]
        elif policy.connector is not None:
            connector_type = policy.connector
        return self.rotators.for_policy(policy, connector_type)

    def _request(
        self, tenant: str, policy: RotationPolicy, cred: Credential, field_name: str
    ) -> RotationRequest:
        settings: Mapping[str, object] = {}
        transport = None
        if policy.connector is not None and self.connector_info is not None:
            _, settings, transport = self.connector_info(policy.connector)
        return RotationRequest(
            tenant=tenant,
            credential=policy.credential,
            field=field_name,
            kind=policy.kind,
            current=cred.fields.get(field_name) or Secret("", name=field_name),
            fields=cred.fields,
            settings=settings,
            transport=transport,  # type: ignore[arg-type]
        )

    async def _verify(self, tenant: str, policy: RotationPolicy) -> Verification:
        if policy.effective_verify == "none":
            return Verification(True, "not verified (verify='none')")
        try:
            return await self.verifier.verify(tenant, policy)
        except Exception as exc:  # a crashing probe is a failed verification
            return Verification(False, f"verifier raised {type(exc).__name__}")

    async def _committed(
        self, tenant: str, actor: str, policy: RotationPolicy, old: int, new: int
    ) -> None:
        if self.policies is not None:
            await self.policies.mark_rotated(tenant, policy.credential)
        self._event("rotation.committed", tenant, actor, policy, from_version=old, to_version=new)

    def _rolled_back(
        self,
        tenant: str,
        actor: str,
        policy: RotationPolicy,
        old: Credential,
        new_version: int | None,
        detail: str,
    ) -> RotationResult:
        self._event(
            "rotation.rolled_back",
            tenant,
            actor,
            policy,
            from_version=old.version,
            to_version=new_version,
            detail=detail,
            outcome="failure",
        )
        _log.warning(
            "rotation.rolled_back", tenant=tenant, credential=policy.credential, detail=detail
        )
        return RotationResult(
            tenant, policy.credential, "rolled_back", old.version, new_version, None, detail
        )

    def _event(
        self,
        kind: str,
        tenant: str,
        actor: str,
        policy: RotationPolicy,
        *,
        from_version: int | None = None,
        to_version: int | None = None,
        detail: str = "",
        outcome: Outcome = "success",
    ) -> None:
        details: dict[str, JsonValue] = {
            "kind": policy.kind,
            "field": policy.field,
            "from_version": from_version,
            "to_version": to_version,
        }
        if detail:
            details["detail"] = detail[:300]
        self.audit.record(
            AuditEvent.new(
                clock=self.clock,
                kind=kind,
                tenant=tenant,
                actor=actor,
                operation=kind.split(".", 1)[1],
                outcome=outcome,
                connector=policy.connector,
                credential_name=policy.credential,
                credential_version=to_version if to_version is not None else from_version,
                details=details,
            )
        )

    def _lease(self, tenant: str, credential: str) -> _Lease:
        return _Lease(self, f"connectors:rotation:{len(tenant)}:{tenant}:{credential}", tenant)


class _Lease:
    """The per-credential rotation lease on the state backend (Redis across processes)."""

    def __init__(self, engine: RotationEngine, key: str, tenant: str) -> None:
        self._engine = engine
        self._key = key
        self._tenant = tenant
        self._owner = f"rotation-{uuid.uuid4().hex}"

    async def __aenter__(self) -> None:
        engine = self._engine
        fence = await engine.state.lock_acquire(
            self._key, owner=self._owner, ttl=engine.lock_ttl, now=engine.clock.time()
        )
        if fence is None:
            raise Conflict(
                "another rotation of this credential is running",
                tenant=self._tenant,
                hint="wait for it to finish, then retry",
            )

    async def __aexit__(self, *exc: object) -> None:
        engine = self._engine
        await engine.state.lock_release(self._key, owner=self._owner, now=engine.clock.time())


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

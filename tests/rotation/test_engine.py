"""Zero-downtime rotation under continuous traffic, and rollback when verification fails."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx2
import pytest

from connectors.adapters.webhook.delivery import DeliveryOptions, DeliveryService
from connectors.adapters.webhook.endpoints import EndpointStore
from connectors.adapters.webhook.outbox import WebhookOutbox
from connectors.adapters.webhook.signing import decode_whsec, standard_signature
from connectors.audit.events import AuditEvent
from connectors.auth.tokens import TokenSet
from connectors.clock import FakeClock
from connectors.config.definition import ConnectorDefinition
from connectors.config.settings import Settings
from connectors.hub import Hub
from connectors.jobs.queue import JobQueue
from connectors.registry import AdapterRegistry
from connectors.rotation import RotationEngine, RotationPolicy, RotatorRegistry
from connectors.secrets.secret import Secret
from connectors.state.memory import MemoryStateBackend
from tests.rotation._provider import PingConnector, Provider, ProviderKeyRotator, RefreshGrant

TENANT = "acme"
OLD_HOOK = "whsec_" + base64.b64encode(b"o" * 32).decode()


class Capture:
    """An audit sink that keeps events."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def record(self, event: AuditEvent) -> None:
        self.events.append(event)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events if e.kind.startswith("rotation.")]


def make_hub(tmp_path: Path, provider: Provider, settings: dict[str, object]) -> Hub:
    registry = AdapterRegistry(discover=False, builtins={})
    registry.register(PingConnector)
    return Hub(
        Settings.load({}, data_dir=tmp_path / "data", dev_mode=True),
        registry=registry,
        definitions={
            "ping": ConnectorDefinition.model_validate({"type": "ping", "settings": settings})
        },
        transports={"ping": provider.transport()},
        state=MemoryStateBackend(),
        clock=provider.clock,
        enforce_access=False,
    )


def make_engine(hub: Hub, provider: Provider) -> tuple[RotationEngine, Capture]:
    rotators = RotatorRegistry(discover=False)
    rotators.register("ping", ProviderKeyRotator())
    engine = RotationEngine.for_hub(hub, rotators=rotators)
    capture = Capture()
    engine.audit = capture
    return engine, capture


class Traffic:
    """Background callers; each call opens the connector (resolving the credential) and pings."""

    def __init__(self, call: Callable[[], Awaitable[None]], workers: int = 4) -> None:
        self.call = call
        self.calls = 0
        self.failures: list[str] = []
        self.done = [0] * workers
        self._stop = asyncio.Event()
        self._tasks = [asyncio.create_task(self._loop(i)) for i in range(workers)]

    async def _loop(self, index: int) -> None:
        while not self._stop.is_set():
            try:
                await self.call()
            except Exception as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")
            self.calls += 1
            self.done[index] += 1
            await asyncio.sleep(0)

    async def settle(self, rounds: int = 3) -> None:
        """Wait until every worker finished ``rounds`` more calls (all started after now)."""
        target = [d + rounds for d in self.done]
        while any(d < t for d, t in zip(self.done, target, strict=True)):  # noqa: ASYNC110
            await asyncio.sleep(0.001)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)


def test_api_key_rotation_under_traffic_fails_no_call_and_revokes_the_old_key(
    tmp_path: Path,
) -> None:
    provider = Provider(FakeClock())
    hub = make_hub(tmp_path, provider, {"api_key": "${secret:provider-key}"})
    policy = RotationPolicy("provider-key", "api_key", connector="ping", grace=600)

    async def main() -> None:
        await hub.start()
        await hub.services.credentials.put(TENANT, "provider-key", {"value": "key-0"}, actor="t")
        engine, audit = make_engine(hub, provider)

        async def call() -> None:
            async with hub.open("ping", tenant_id=TENANT) as conn:
                assert isinstance(conn, PingConnector)
                await conn.ping()

        traffic = Traffic(call)
        await traffic.settle()
        result = await engine.rotate(TENANT, policy)
        assert result.outcome == "committed"
        assert "key-0" in provider.keys, "the old key stays valid during the grace window"
        await traffic.settle()
        revoked = await engine.revoke_old(TENANT, policy, early=True)
        await traffic.settle()
        await traffic.stop()
        assert revoked.outcome == "revoked"
        assert traffic.failures == []
        assert traffic.calls > 20
        assert provider.failures == 0
        assert provider.revoked == {"key-0"}
        stored = await hub.services.credentials.get(TENANT, "provider-key", fresh=True)
        assert set(stored.fields) == {"value"}
        assert stored.secret().reveal() in provider.keys
        assert audit.kinds() == [
            "rotation.started",
            "rotation.verified",
            "rotation.committed",
            "rotation.old_revoked",
        ]
        jobs = await JobQueue(hub.services.database).list(name="rotation.revoke_old")
        assert len(jobs) == 1
        assert jobs[0].run_at == pytest.approx(result.revoke_at)
        await hub.aclose()

    asyncio.run(main())


def test_a_new_key_that_fails_its_health_check_is_rolled_back(tmp_path: Path) -> None:
    provider = Provider(FakeClock())
    provider.reject_new_keys = True
    hub = make_hub(tmp_path, provider, {"api_key": "${secret:provider-key}"})
    policy = RotationPolicy("provider-key", "api_key", connector="ping")

    async def main() -> None:
        await hub.start()
        store = hub.services.credentials
        v1 = await store.put(TENANT, "provider-key", {"value": "key-0"}, actor="t")
        engine, audit = make_engine(hub, provider)
        result = await engine.rotate(TENANT, policy)
        assert result.outcome == "rolled_back"
        stored = await store.get(TENANT, "provider-key", fresh=True)
        assert stored.secret().reveal() == "key-0"
        assert set(stored.fields) == {"value"}
        assert "rotation" not in stored.metadata
        assert stored.version > v1  # restored as a new version, with compare-and-swap
        assert audit.kinds() == ["rotation.started", "rotation.rolled_back"]
        rolled = audit.events[-1]
        assert rolled.outcome == "failure"
        assert rolled.credential_name == "provider-key"
        assert len(provider.discarded) == 1, "the rejected new key is cancelled at the provider"
        assert "key-0" in provider.keys
        await hub.aclose()

    asyncio.run(main())


def test_audit_events_name_versions_and_never_a_value(tmp_path: Path) -> None:
    provider = Provider(FakeClock())
    hub = make_hub(tmp_path, provider, {"api_key": "${secret:provider-key}"})
    policy = RotationPolicy("provider-key", "api_key", connector="ping")

    async def main() -> None:
        await hub.start()
        await hub.services.credentials.put(TENANT, "provider-key", {"value": "key-0"}, actor="t")
        engine, audit = make_engine(hub, provider)
        await engine.rotate(TENANT, policy, actor="ops@acme")
        new = (await hub.services.credentials.get(TENANT, "provider-key")).secret().reveal()
        text = json.dumps([e.to_dict() for e in audit.events], default=str)
        assert "key-0" not in text
        assert new not in text
        committed = audit.events[-1]
        assert committed.actor == "ops@acme"
        assert committed.tenant == TENANT
        assert committed.details["from_version"] == 1
        assert committed.details["to_version"] == 2
        await hub.aclose()

    asyncio.run(main())


def test_oauth_refresh_token_rotation_under_traffic_fails_no_call(tmp_path: Path) -> None:
    clock = FakeClock()
    provider = Provider(clock)
    hub = make_hub(tmp_path, provider, {"oauth_credential": "provider-oauth"})
    policy = RotationPolicy("provider-oauth", "oauth_refresh", connector="ping")

    async def main() -> None:
        await hub.start()
        first = TokenSet.from_response(provider.issue(), clock.time())
        await hub.tokens.install(TENANT, "provider-oauth", first)
        hub.tokens.register(TENANT, "provider-oauth", RefreshGrant(provider))
        engine, audit = make_engine(hub, provider)

        async def call() -> None:
            async with hub.open("ping", tenant_id=TENANT) as conn:
                assert isinstance(conn, PingConnector)
                await conn.ping()

        traffic = Traffic(call)
        await traffic.settle()
        old_refresh = first.refresh_token
        assert old_refresh is not None
        result = await engine.rotate(TENANT, policy)
        await traffic.settle()
        await traffic.stop()
        assert result.outcome == "committed"
        assert traffic.failures == []
        assert provider.failures == 0
        assert provider.refreshes == 1
        assert old_refresh.reveal() not in provider.refresh, "the provider rotated it"
        stored = await hub.tokens.store.load(TENANT, "provider-oauth")
        assert stored is not None
        assert stored.token.refresh_token is not None
        assert stored.token.refresh_token.reveal() in provider.refresh
        assert audit.kinds() == ["rotation.started", "rotation.verified", "rotation.committed"]
        await hub.aclose()

    asyncio.run(main())


def test_webhook_secret_rotation_sends_both_signatures_so_no_delivery_fails(
    tmp_path: Path,
) -> None:
    provider = Provider(FakeClock())
    hub = make_hub(tmp_path, provider, {})
    accepted: list[Secret] = [Secret(OLD_HOOK)]
    failed: list[str] = []
    phase = ["before"]

    def receiver(request: httpx2.Request) -> httpx2.Response:
        sent = request.headers["webhook-signature"].split()
        expected = {
            standard_signature(
                decode_whsec(s),
                request.headers["webhook-id"],
                request.headers["webhook-timestamp"],
                request.content,
            )
            for s in accepted
        }
        if not expected & set(sent):
            failed.append(f"{request.headers['webhook-id']} sigs={len(sent)} phase={phase}")
            return httpx2.Response(401)
        return httpx2.Response(204)

    async def main() -> None:
        await hub.start()
        db = hub.services.database
        await hub.services.credentials.put(TENANT, "hooks", {"value": OLD_HOOK}, actor="t")
        endpoint = await EndpointStore(db).create(
            TENANT, "https://receiver.example/hook", ["${secret:hooks}"]
        )
        policy = RotationPolicy(
            "hooks", "webhook_secret", grace=600, endpoints=(endpoint.id,), verify="none"
        )
        service = DeliveryService(
            db,
            secrets=hub.services.resolvers,
            options=_no_signing_cache(),
            transport=httpx2.MockTransport(receiver),
            resolver=_public_resolver,
        )
        outbox = WebhookOutbox(db)
        engine, audit = make_engine(hub, provider)

        async def call() -> None:
            message = await outbox.send(TENANT, "ping", {"n": 1}, endpoint.id)
            result = await service.deliver(message)
            assert result is not None
            assert result.outcome == "success", result

        traffic = Traffic(call, workers=2)
        await traffic.settle()
        phase[0] = "rotating"
        result = await engine.rotate(TENANT, policy)
        phase[0] = "committed"
        assert result.outcome == "committed"
        await traffic.settle()
        phase[0] = "switched"
        new = (await hub.services.credentials.get(TENANT, "hooks")).secret()
        accepted[:] = [new]  # the receiver switches to the new secret during the grace window
        await traffic.settle()
        phase[0] = "revoking"
        await engine.revoke_old(TENANT, policy, early=True)
        phase[0] = "revoked"
        await traffic.settle()
        await traffic.stop()
        await service.aclose()
        assert failed == []
        assert traffic.failures == []
        assert (await EndpointStore(db).get(TENANT, endpoint.id)).secret_refs == (
            "${secret:hooks}",
        )
        assert "rotation.old_revoked" in audit.kinds()
        await hub.aclose()

    asyncio.run(main())


def test_inbound_verification_accepts_both_secrets_during_the_grace_window(
    tmp_path: Path,
) -> None:
    provider = Provider(FakeClock())
    hub = make_hub(tmp_path, provider, {})
    policy = RotationPolicy("inbound", "webhook_secret", verify="none")

    async def main() -> None:
        await hub.start()
        store = hub.services.credentials
        await store.put(TENANT, "inbound", {"value": OLD_HOOK}, actor="t")
        engine, _ = make_engine(hub, provider)
        await engine.rotate(TENANT, policy)
        during = await store.get(TENANT, "inbound", fresh=True)
        values = {s.reveal() for s in during.fields.values()}
        assert OLD_HOOK in values
        assert len(values) == 2
        await engine.revoke_old(TENANT, policy, early=True)
        after = await store.get(TENANT, "inbound", fresh=True)
        assert [s.reveal() for s in after.fields.values()] != [OLD_HOOK]
        assert len(after.fields) == 1
        await hub.aclose()

    asyncio.run(main())


def test_a_rotation_in_its_grace_window_is_skipped_and_revocation_waits_for_the_window(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    provider = Provider(clock)
    hub = make_hub(tmp_path, provider, {"api_key": "${secret:provider-key}"})
    policy = RotationPolicy("provider-key", "api_key", connector="ping", grace=600)

    async def main() -> None:
        await hub.start()
        await hub.services.credentials.put(TENANT, "provider-key", {"value": "key-0"}, actor="t")
        engine, _ = make_engine(hub, provider)
        assert (await engine.rotate(TENANT, policy)).outcome == "committed"
        assert (await engine.rotate(TENANT, policy)).outcome == "skipped"
        assert (await engine.revoke_old(TENANT, policy)).outcome == "skipped"
        clock.advance(601)
        assert (await engine.revoke_old(TENANT, policy)).outcome == "revoked"
        await hub.aclose()

    asyncio.run(main())


async def _public_resolver(host: str) -> list[str]:
    return ["93.184.216.34"]


def _no_signing_cache() -> DeliveryOptions:
    """Resolve secrets on every attempt: the test compresses the grace window to a few calls,
    while in production the grace window (minutes to days) outlasts the signing cache."""
    if "secret_ttl" in DeliveryOptions.__dataclass_fields__:
        return DeliveryOptions(**{"secret_ttl": 0.0})  # type: ignore[arg-type]
    return DeliveryOptions()

"""The WebhookConnector through the Hub: operations, tenant binding, health, deliver_now."""

import asyncio
import tempfile
from pathlib import Path

import httpx2
import pytest

from connectors.adapters.webhook import (
    DeliveryService,
    RetrySchedule,
    StaticSecrets,
    WebhookConnector,
)
from connectors.config.settings import Settings
from connectors.errors import ConfigurationError, InvalidRequest, NotFound
from connectors.hub import Hub
from connectors.observability.health import HealthStatus
from connectors.registry import AdapterRegistry
from connectors.secrets import Secret
from tests.adapters.webhook._support import PUBLIC_URL, WHSEC, public_dns
from tests.jobs._support import make_db


def run(coro):
    return asyncio.run(coro)


def make_hub() -> Hub:
    registry = AdapterRegistry(discover=False, builtins={})
    registry.register(WebhookConnector)
    return Hub(Settings.load({}, data_dir=Path(tempfile.mkdtemp())), registry=registry)


def test_declared_operations_and_version():
    ops = WebhookConnector.operations()
    assert WebhookConnector.name == "webhook"
    assert WebhookConnector.version == "1.0.0"
    assert ops["send"].idempotent
    assert {"send", "deliver_now", "replay", "attempts", "dead_letters"} <= set(ops)


def test_send_deliver_now_attempts_and_health(tmp_path):
    answers = iter([500, 200])

    async def main():
        db = await make_db(tmp_path)
        service = DeliveryService(
            db,
            secrets=StaticSecrets({"${secret:hook}": Secret(WHSEC)}),
            resolver=public_dns,
            transport=httpx2.MockTransport(lambda r: httpx2.Response(next(answers))),
        )
        hub = make_hub()
        conn = hub.connector(
            "webhook",
            tenant_id="acme",
            settings={"retry_schedule": [0, 5], "max_payload_bytes": 100},
        )
        conn.runtime.extras.update(database=db, delivery=service)
        async with conn:
            ep = await conn.create_endpoint(PUBLIC_URL, ["${secret:hook}"])
            msg = await conn.send("order.created", {"id": 1}, ep.id)
            with pytest.raises(InvalidRequest):
                await conn.send("big", {"x": "y" * 200}, ep.id)
            first = await conn.deliver_now(msg)
            assert first.outcome == "failure"
            assert first.retry_in == 5
            second = await conn.deliver_now(msg)
            assert second.outcome == "success"
            log = await conn.attempts(message_id=msg)
            assert [a.status for a in log] == [500, 200]
            assert (await conn.health_check()).status is HealthStatus.HEALTHY
            assert await conn.dead_letters() == []
            assert await conn.replay() == []
            assert [e.id for e in await conn.endpoints()] == [ep.id]
            disabled = await conn.set_endpoint_enabled(ep.id, False)
            assert not disabled.enabled
            health = await conn.health_check()
            assert health.status is HealthStatus.DEGRADED
            assert health.check("endpoints").data["disabled"] == 1
        other = hub.connector("webhook", tenant_id="other")
        other.runtime.extras.update(database=db)
        async with other:
            with pytest.raises(NotFound):
                await other.send("e", {}, ep.id)
            with pytest.raises(NotFound):
                await other.deliver_now(msg)
        await service.aclose()
        await db.dispose()

    run(main())


def test_a_database_url_setting_is_used_when_no_database_is_wired(tmp_path):
    async def main():
        hub = make_hub()
        url = f"sqlite+aiosqlite:///{tmp_path / 'own.db'}"
        async with hub.open("webhook", tenant_id="acme", settings={"database_url": url}) as conn:
            ep = await conn.create_endpoint(PUBLIC_URL, ["${secret:hook}"])
            assert await conn.send("e", {}, ep.id)

    run(main())


def test_without_a_database_connect_fails_clearly():
    async def main():
        conn = make_hub().connector("webhook", tenant_id="acme")
        del conn.runtime.extras["database"]  # a runtime built without the Hub's database
        async with conn:
            pass

    with pytest.raises(ConfigurationError, match="needs a database"):
        run(main())


def test_a_schedule_setting_must_be_a_list(tmp_path):
    async def main():
        db = await make_db(tmp_path)
        conn = make_hub().connector("webhook", tenant_id="a", settings={"retry_schedule": "x"})
        conn.runtime.extras["database"] = db
        try:
            with pytest.raises(Exception, match="retry_schedule"):
                await conn.connect()
        finally:
            await conn.disconnect()
            await db.dispose()

    run(main())
    assert RetrySchedule().max_attempts == 8

"""The health model: auth states from metadata, circuit and quota, status and the 200/503 rule."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import httpx2
import pytest

from connectors.errors import CircuitOpen, ServiceUnavailable
from connectors.observability.health import HealthStatus
from connectors.secrets.credential import CredentialInfo, JSONValue
from connectors.server.health import HealthModel, auth_view
from tests.server._support import DEFAULT_SETTINGS, make_server_hub, setup_env

NOW = 1_700_000_000.0


def info(**metadata: JSONValue) -> CredentialInfo:
    stamp = datetime.fromtimestamp(NOW, UTC)
    return CredentialInfo("t", "c", 1, ("token_set",), metadata, stamp, stamp, "x")


@pytest.mark.parametrize(
    ("metadata", "state"),
    [
        ({"kind": "api_key"}, "valid"),
        ({"expires_at": NOW + 7200}, "valid"),
        ({"expires_at": NOW + 600}, "expiring"),
        ({"expires_at": NOW - 1}, "expired"),
        ({"expires_at": NOW + 7200, "needs_reauth": True}, "needs_reauth"),
    ],
)
def test_auth_state_comes_from_credential_metadata(
    metadata: dict[str, JSONValue], state: str
) -> None:
    view = auth_view(info(**metadata), now=NOW, expiring_within=1800, name="c")
    assert view.state == state


def test_a_missing_credential_is_unknown() -> None:
    assert auth_view(None, now=NOW, expiring_within=1800, name="c").state == "unknown"


def failing() -> httpx2.MockTransport:
    return httpx2.MockTransport(lambda request: httpx2.Response(503, json={"error": "down"}))


def test_an_open_circuit_makes_the_connector_unhealthy_and_the_endpoint_503(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        hub = make_server_hub(tmp_path, failing(), threshold=3)
        env = await setup_env(hub)
        try:
            async with hub.open("echo", tenant_id="acme") as conn:
                for _ in range(4):
                    with pytest.raises((ServiceUnavailable, CircuitOpen)):
                        await conn.echo("x")  # type: ignore[attr-defined]
            async with env.client(env.token("acme", "viewer")) as client:
                response = await client.get("/api/connectors/health")
                assert response.status_code == 503
                (echo,) = response.json()["connectors"]
                assert echo["status"] == "unhealthy"
                assert echo["circuit"]["state"] == "open"
                assert echo["circuit"]["next_probe_at"] > hub.clock.time()
                assert "circuit open" in echo["reasons"]
                assert echo["errors_5m"] == 4
                assert echo["last_error_code"] in ("ServiceUnavailable", "CircuitOpen")
            async with env.client(env.token("globex", "viewer")) as other:
                # globex's breaker is its own: untouched by acme's failures.
                response = await other.get("/api/connectors/health")
                assert response.status_code == 200
                assert response.json()["connectors"][0]["circuit"]["state"] == "closed"
        finally:
            await hub.aclose()

    asyncio.run(main())


def test_healthy_calls_quota_and_auth_show_in_the_view(tmp_path: Path) -> None:
    async def main() -> None:
        hub = make_server_hub(tmp_path)
        await setup_env(hub)
        try:
            async with hub.open("echo", tenant_id="acme") as conn:
                for _ in range(5):
                    await conn.echo("x")  # type: ignore[attr-defined]
            hub.metrics.rate_limit_remaining("echo", "acme", "daily", 42.0)
            hub.metrics.rate_limit_remaining("echo", "globex", "daily", 7.0)
            await hub.services.credentials.put(
                "acme",
                "echo",
                {"token_set": "{}"},
                metadata={"expires_at": hub.clock.time() + 60, "needs_reauth": True},
                actor="test",
            )
            view = await HealthModel(hub, DEFAULT_SETTINGS).view("acme", "echo")
            assert view.recent.calls == 5
            assert view.recent.error_rate == 0.0
            assert view.recent.p95 is not None
            assert view.quota == {"daily": 42.0}
            assert view.auth.state == "needs_reauth"
            assert view.status is HealthStatus.UNHEALTHY
            assert view.to_dict()["token_expires_at"] == view.auth.expires_at
            assert len(view.to_dict()["series"]) == 30  # type: ignore[arg-type]
        finally:
            await hub.aclose()

    asyncio.run(main())


def test_a_connector_without_calls_or_probes_is_unknown_not_unhealthy(tmp_path: Path) -> None:
    async def main() -> None:
        hub = make_server_hub(tmp_path)
        env = await setup_env(hub)
        try:
            async with env.client(env.token("acme", "viewer")) as client:
                response = await client.get("/api/connectors/health")
                assert response.status_code == 200
                assert response.json()["status"] == "unknown"
        finally:
            await hub.aclose()

    asyncio.run(main())


def test_tenants_see_only_their_configured_connectors(tmp_path: Path) -> None:
    hub = make_server_hub(tmp_path)
    model = HealthModel(hub, DEFAULT_SETTINGS)
    assert model.connectors_for("acme") == ["echo"]
    assert model.connectors_for("globex") == ["echo-b"]
    assert model.connectors_for("initech") == ["echo", "echo-b"]

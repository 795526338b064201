"""The authorisation matrix: every role × every endpoint × own and other tenant.

A role gets 403 for what MATRIX does not allow it; with the permission, its own tenant's object
answers and the other tenant's object is a 404; nothing of the other tenant ever appears in an
answer. Without a (valid) token, nothing but ``/livez`` answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.access.roles import MATRIX, Permission, Role
from connectors.sync import BackgroundLoop
from tests.server._support import CANARY, Env, background, make_server_hub, run, setup_env

P = Permission

# (method, own path, other-tenant path, permission)
ENDPOINTS: list[tuple[str, str, str, Permission]] = [
    ("GET", "/api/connectors/health", "/api/connectors/health?tenant=globex", P.HEALTH_READ),
    ("GET", "/api/connectors", "/api/connectors?tenant=globex", P.HEALTH_READ),
    ("GET", "/api/connectors/echo", "/api/connectors/echo-b", P.HEALTH_READ),
    (
        "GET",
        "/api/connectors/echo?tenant=acme",
        "/api/connectors/echo?tenant=globex",
        P.HEALTH_READ,
    ),
    ("POST", "/api/connectors/echo/check", "/api/connectors/echo-b/check", P.OPERATION_RUN),
    (
        "POST",
        "/api/connectors/echo/circuit/reset",
        "/api/connectors/echo-b/circuit/reset",
        P.CIRCUIT_RESET,
    ),
    ("GET", "/api/audit", "/api/audit?tenant=globex", P.AUDIT_READ),
    # Filtering by another tenant's connector is allowed and finds nothing (checked below).
    ("GET", "/api/audit?connector=echo", "/api/audit?connector=echo-b", P.AUDIT_READ),
    (
        "GET",
        "/api/connectors/echo/oauth/start",
        "/api/connectors/echo-b/oauth/start",
        P.CREDENTIAL_WRITE,
    ),
    ("GET", "/metrics", "/metrics", P.HEALTH_READ),
    ("GET", "/openapi.json", "/openapi.json", P.HEALTH_READ),
    ("GET", "/", "/", P.HEALTH_READ),
    ("GET", "/circuits", "/circuits", P.HEALTH_READ),
    ("GET", "/connectors/echo", "/connectors/echo-b", P.HEALTH_READ),
    ("GET", "/audit", "/audit?connector=echo-b", P.AUDIT_READ),
    ("POST", "/connectors/echo/check", "/connectors/echo-b/check", P.OPERATION_RUN),
    ("POST", "/circuits/echo/reset", "/circuits/echo-b/reset", P.CIRCUIT_RESET),
]

# Answers that mean "allowed, and the request reached its handler": the echo connector has no
# OAuth flow (400), and dashboard POSTs redirect (303).
ALLOWED = {200, 303, 400}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[BackgroundLoop, Env]]:
    with background() as loop:
        tmp: Path = tmp_path_factory.mktemp("authz")
        hub = make_server_hub(tmp)
        environment = run(loop, setup_env(hub))

        async def traffic() -> None:
            # Some history for both tenants, so cross-tenant leaks would be visible.
            for tenant, name in (("acme", "echo"), ("globex", "echo-b")):
                async with hub.open(name, tenant_id=tenant) as conn:
                    await conn.echo(f"hello-{tenant}")  # type: ignore[attr-defined]
            await hub.services.flush()

        run(loop, traffic())
        try:
            yield loop, environment
        finally:
            run(loop, hub.aclose())


def _request(
    env: Env, loop: BackgroundLoop, token: str | None, method: str, path: str
) -> tuple[int, str]:
    async def go() -> tuple[int, str]:
        async with env.client(token) as client:
            response = await client.request(method, path)
            return response.status_code, response.text

    return run(loop, go())


@pytest.mark.parametrize("target", ["own", "other"])
@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
@pytest.mark.parametrize(
    ("method", "own", "other", "permission"),
    ENDPOINTS,
    ids=[f"{m} {p}" for m, p, _o, _perm in ENDPOINTS],
)
def test_role_sees_only_what_the_matrix_allows_in_its_own_tenant(
    env: tuple[BackgroundLoop, Env],
    method: str,
    own: str,
    other: str,
    permission: Permission,
    role: Role,
    target: str,
) -> None:
    loop, environment = env
    path = own if target == "own" else other
    status, body = _request(environment, loop, environment.token("acme", role), method, path)
    if permission not in MATRIX[role]:
        assert status == 403, (status, body[:200])
    elif target == "own" or path == own:
        assert status in ALLOWED, (status, body[:300])
    elif "connector=echo-b" in path:
        assert status == 200
        assert '"events":[]' in body or "No events." in body
    else:
        assert status == 404, (status, body[:300])
    # Nothing of the other tenant (its name appears in no acme object; acme's own audit trail
    # may name the paths acme itself requested, so connector names are not checked here).
    assert "globex" not in body
    assert CANARY not in body


@pytest.mark.parametrize(
    ("method", "path"),
    sorted({(m, p) for m, p, _o, _perm in ENDPOINTS} | {("GET", "/api/nothing-here")}),
)
@pytest.mark.parametrize("token", [None, "cft_000000000000_" + "x" * 43, "not-a-token"])
def test_nothing_but_livez_answers_without_a_valid_token(
    env: tuple[BackgroundLoop, Env], method: str, path: str, token: str | None
) -> None:
    loop, environment = env
    status, body = _request(environment, loop, token, method, path)
    assert status == 401
    assert "acme" not in body
    assert "echo" not in body


def test_livez_answers_without_a_token_and_says_nothing(env: tuple[BackgroundLoop, Env]) -> None:
    loop, environment = env
    assert _request(environment, loop, None, "GET", "/livez") == (200, "ok")


def test_metrics_show_only_the_token_tenant_series(env: tuple[BackgroundLoop, Env]) -> None:
    loop, environment = env
    status, body = _request(
        environment, loop, environment.token("globex", "viewer"), "GET", "/metrics"
    )
    assert status == 200
    assert 'tenant="globex"' in body
    assert 'tenant="acme"' not in body


def test_denied_requests_are_audited(env: tuple[BackgroundLoop, Env]) -> None:
    loop, environment = env
    token = environment.token("acme", "viewer")
    assert (
        _request(environment, loop, token, "POST", "/api/connectors/echo/circuit/reset")[0] == 403
    )
    status, body = _request(
        environment,
        loop,
        environment.token("acme", "admin"),
        "GET",
        "/api/audit?kind=access.denied",
    )
    assert status == 200
    assert '"operation":"circuit.reset"' in body

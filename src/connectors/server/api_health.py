"""Health and status API: liveness, per-tenant connector health, on-demand checks, breaker reset.

Every route answers for the caller's own tenant only. An optional ``tenant`` query parameter is
accepted for clarity; naming any other tenant is a ``404``, exactly like naming a connector the
tenant does not have, so a token cannot even learn whether another tenant exists.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from connectors.access.roles import Permission
from connectors.audit.events import AuditEvent
from connectors.observability.health import HealthStatus
from connectors.server.auth import CSRF_FIELD, Principal, require
from connectors.server.runtime import ServerRuntime, runtime

__all__ = ["check_csrf", "router", "visible_connector", "visible_tenant"]

router = APIRouter()

Runtime = Annotated[ServerRuntime, Depends(runtime)]
TenantParam = Annotated[
    str | None, Query(max_length=200, description="Must be the token's own tenant if given.")
]


def visible_tenant(principal: Principal, tenant: str | None) -> str:
    """The principal's tenant; 404 if the caller named another one."""
    if tenant is not None and tenant != principal.tenant:
        raise HTTPException(404, "not found")
    return principal.tenant


def visible_connector(rt: ServerRuntime, principal: Principal, name: str) -> str:
    """``name`` if the principal's tenant has that connector, else 404 (no hint why)."""
    if name not in rt.model.connectors_for(principal.tenant):
        raise HTTPException(404, "not found")
    return name


async def check_csrf(request: Request, rt: ServerRuntime, principal: Principal) -> None:
    """Session callers must send the CSRF token (header ``X-CSRF-Token`` or form field)."""
    presented = request.headers.get("x-csrf-token")
    if presented is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    if not rt.authenticator.csrf_ok(principal, presented):
        raise HTTPException(403, "missing or invalid CSRF token: reload the page and try again")


@router.get("/livez", include_in_schema=False)
async def livez() -> PlainTextResponse:
    """Liveness: the process serves HTTP. No details, no authentication."""
    return PlainTextResponse("ok")


@router.get("/api/connectors/health", summary="Health of every connector of the token's tenant")
async def connectors_health(
    rt: Runtime,
    principal: Annotated[Principal, Depends(require(Permission.HEALTH_READ))],
    tenant: TenantParam = None,
) -> JSONResponse:
    """Status, auth state, token expiry, circuit, quota, 5-minute error rate, p95 latency, last
    success and failure per connector. ``200`` when nothing is unhealthy, ``503`` otherwise."""
    own = visible_tenant(principal, tenant)
    views = await rt.model.views(own)
    overall = HealthStatus.worst(v.status for v in views) if views else HealthStatus.UNKNOWN
    body = {
        "tenant": own,
        "status": overall.value,
        "connectors": [v.to_dict(series=False) for v in views],
    }
    unhealthy = any(v.status is HealthStatus.UNHEALTHY for v in views)
    return JSONResponse(body, status_code=503 if unhealthy else 200)


@router.get("/api/connectors", summary="Connectors of the token's tenant")
async def list_connectors(
    rt: Runtime,
    principal: Annotated[Principal, Depends(require(Permission.HEALTH_READ))],
    tenant: TenantParam = None,
) -> JSONResponse:
    own = visible_tenant(principal, tenant)
    items = []
    for name in rt.model.connectors_for(own):
        definition = rt.hub.definition(name)
        view = await rt.model.view(own, name)
        items.append(
            {
                "name": name,
                "type": definition.type,
                "status": view.status.value,
                "auth_state": view.auth.state,
                "circuit_state": view.circuit.state,
            }
        )
    return JSONResponse({"tenant": own, "connectors": items})


@router.get("/api/connectors/{name}", summary="One connector's health, breaker and series")
async def get_connector(
    name: str,
    rt: Runtime,
    principal: Annotated[Principal, Depends(require(Permission.HEALTH_READ))],
    tenant: TenantParam = None,
) -> JSONResponse:
    own = visible_tenant(principal, tenant)
    visible_connector(rt, principal, name)
    view = await rt.model.view(own, name)
    return JSONResponse(view.to_dict())


@router.post("/api/connectors/{name}/check", summary="Run the connector's health check now")
async def run_check(
    name: str,
    request: Request,
    rt: Runtime,
    principal: Annotated[Principal, Depends(require(Permission.OPERATION_RUN))],
    tenant: TenantParam = None,
) -> JSONResponse:
    own = visible_tenant(principal, tenant)
    visible_connector(rt, principal, name)
    await check_csrf(request, rt, principal)
    result = await rt.prober.probe(own, name)
    rt.hub.services.audit.record(
        AuditEvent.new(
            clock=rt.hub.clock,
            kind="health.check",
            tenant=own,
            actor=principal.actor,
            connector=name,
            operation="health_check",
            outcome="success",
            details={"status": result.health.status.value},
        )
    )
    view = await rt.model.view(own, name)
    return JSONResponse({"probe": result.to_dict(), "health": view.to_dict(series=False)})


@router.post("/api/connectors/{name}/circuit/reset", summary="Close the connector's breaker")
async def reset_circuit(
    name: str,
    request: Request,
    rt: Runtime,
    principal: Annotated[Principal, Depends(require(Permission.CIRCUIT_RESET))],
    tenant: TenantParam = None,
) -> JSONResponse:
    own = visible_tenant(principal, tenant)
    visible_connector(rt, principal, name)
    await check_csrf(request, rt, principal)
    await reset_breaker(rt, own, name, principal)
    view = await rt.model.view(own, name)
    return JSONResponse({"circuit": view.circuit.to_dict()})


async def reset_breaker(rt: ServerRuntime, tenant: str, name: str, principal: Principal) -> None:
    """Reset the breaker and audit it (shared with the dashboard's form)."""
    pipeline = rt.model.pipeline(name)
    before = (await pipeline.breaker_snapshot(tenant)).state.value
    await pipeline.reset_breaker(tenant)
    rt.hub.services.audit.record(
        AuditEvent.new(
            clock=rt.hub.clock,
            kind="circuit.reset",
            tenant=tenant,
            actor=principal.actor,
            connector=name,
            operation="circuit.reset",
            outcome="success",
            details={"from_state": str(before)},
        )
    )

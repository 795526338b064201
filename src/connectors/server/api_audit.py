"""``GET /api/audit``: the tenant's audit events, newest first, filtered, cursor-paged.

The tenant filter is always the token's tenant (a ``tenant`` parameter naming another one is a
404); a cursor from another query only moves the keyset position, it cannot widen the filter.
Naive ``since``/``until`` times are read as UTC.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from connectors.access.roles import Permission
from connectors.audit.query import AuditPage, AuditQuery, list_events
from connectors.server.api_health import TenantParam, visible_tenant
from connectors.server.auth import Principal, require
from connectors.server.runtime import ServerRuntime, runtime

__all__ = ["AuditFilters", "fetch_page", "router"]

router = APIRouter()

Text = Annotated[str | None, Query(max_length=200)]


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


@dataclass(frozen=True, slots=True)
class AuditFilters:
    """The filters a caller may set (the tenant is not one of them)."""

    since: datetime | None = None
    until: datetime | None = None
    connector: str | None = None
    outcome: Literal["success", "failure", "denied"] | None = None
    actor: str | None = None
    kind: str | None = None
    operation: str | None = None
    limit: int = 50
    cursor: str | None = None


async def fetch_page(rt: ServerRuntime, tenant: str, filters: AuditFilters) -> AuditPage:
    """One page of ``tenant``'s events under ``filters`` (raises ``InvalidRequest``)."""
    await rt.hub.services.flush()
    query = AuditQuery(
        tenant=tenant,
        since=_utc(filters.since),
        until=_utc(filters.until),
        connector=filters.connector or None,
        outcome=filters.outcome,
        actor=filters.actor or None,
        kind=filters.kind or None,
        operation=filters.operation or None,
        limit=filters.limit,
        cursor=filters.cursor or None,
    )
    return await list_events(rt.hub.services.database, query)


@router.get("/api/audit", summary="Audit events of the token's tenant, newest first")
async def audit(
    rt: Annotated[ServerRuntime, Depends(runtime)],
    principal: Annotated[Principal, Depends(require(Permission.AUDIT_READ))],
    tenant: TenantParam = None,
    since: Annotated[datetime | None, Query(description="Inclusive, ISO 8601.")] = None,
    until: Annotated[datetime | None, Query(description="Exclusive, ISO 8601.")] = None,
    connector: Text = None,
    outcome: Literal["success", "failure", "denied"] | None = None,
    actor: Text = None,
    kind: Text = None,
    operation: Text = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> JSONResponse:
    own = visible_tenant(principal, tenant)
    filters = AuditFilters(since, until, connector, outcome, actor, kind, operation, limit, cursor)
    page = await fetch_page(rt, own, filters)
    return JSONResponse(
        {"events": [e.to_dict() for e in page.events], "next_cursor": page.next_cursor}
    )

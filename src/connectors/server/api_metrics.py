"""``GET /metrics``: the Prometheus text exposition.

Two ways to protect it (``ServerSettings.metrics_auth``):

- ``token`` (default): on the main app, behind an API token of any role; the answer holds only
  series whose ``tenant`` label is the token's tenant (``HELP``/``TYPE`` lines stay), so one
  tenant never reads another's numbers.
- ``none``: the main app does not serve ``/metrics``; :func:`metrics_app` serves every series,
  unauthenticated, on a separate host and port meant for the scraper only (``connectors serve
  --metrics-host 127.0.0.1 --metrics-port 9464``).
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import Response
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.routing import Route

from connectors.access.roles import Permission
from connectors.hub import Hub
from connectors.server.auth import Principal, require
from connectors.server.runtime import ServerRuntime, runtime

__all__ = ["filter_tenant", "metrics_app", "router"]

router = APIRouter()

_TENANT: Final = re.compile(r'[{,]tenant="((?:[^"\\]|\\.)*)"')


def filter_tenant(text: str, label: str) -> str:
    """Keep comment lines and the samples whose ``tenant`` label equals ``label``."""
    kept: list[str] = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            kept.append(line)
            continue
        match = _TENANT.search(line)
        if match is not None and match.group(1) == label:
            kept.append(line)
    return "\n".join(kept) + "\n"


@router.get("/metrics", summary="Prometheus metrics of the token's tenant")
async def metrics(
    rt: Annotated[ServerRuntime, Depends(runtime)],
    principal: Annotated[Principal, Depends(require(Permission.HEALTH_READ))],
) -> Response:
    if rt.settings.metrics_auth != "token":
        raise HTTPException(404, "not found")
    hub = rt.hub
    text = filter_tenant(hub.metrics.render().decode(), hub.metrics.tenant_label(principal.tenant))
    return Response(text, media_type=hub.metrics.content_type)


def metrics_app(hub: Hub) -> Starlette:
    """Every series, no authentication: bind it to a private address for the scraper only."""

    async def scrape(request: Request) -> Response:
        return Response(hub.metrics.render(), media_type=hub.metrics.content_type)

    return Starlette(routes=[Route("/metrics", scrape, methods=["GET"])])

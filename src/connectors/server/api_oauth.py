"""OAuth connect routes: ``GET /api/connectors/{name}/oauth/start`` (admin) and
``GET /oauth/callback`` (the provider sends the browser back here; authenticated by the signed
``state``, since a ``SameSite=Strict`` session cookie does not come along on that redirect)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from connectors.access.roles import Permission
from connectors.errors import ConnectorError
from connectors.server.api_health import TenantParam, visible_connector, visible_tenant
from connectors.server.auth import Principal, require
from connectors.server.runtime import ServerRuntime, runtime

__all__ = ["router"]

router = APIRouter()

Runtime = Annotated[ServerRuntime, Depends(runtime)]


@router.get(
    "/api/connectors/{name}/oauth/start",
    summary="Start an OAuth connect (PKCE, signed state) for the token's tenant",
)
async def oauth_start(
    name: str,
    rt: Runtime,
    principal: Annotated[Principal, Depends(require(Permission.CREDENTIAL_WRITE))],
    tenant: TenantParam = None,
    redirect: Annotated[bool, Query(description="Answer 303 to the provider.")] = False,
) -> Response:
    own = visible_tenant(principal, tenant)
    visible_connector(rt, principal, name)
    started = await rt.oauth.start(own, name, principal.token_id)
    if redirect:
        return RedirectResponse(started.authorize_url, status_code=303)
    return JSONResponse(
        {"authorize_url": started.authorize_url, "state_expires_at": started.expires_at}
    )


@router.get("/oauth/callback", include_in_schema=False)
async def oauth_callback(
    request: Request,
    rt: Runtime,
    state: Annotated[str | None, Query(max_length=4096)] = None,
    code: Annotated[str | None, Query(max_length=4096)] = None,
    error: Annotated[str | None, Query(max_length=200)] = None,
) -> HTMLResponse:
    if error is not None and state is not None:
        # The provider refused (the user denied access); still consume the pending verifier.
        message = f"The provider answered: {error}"
        return rt.templates.TemplateResponse(
            request, "oauth_done.html", {"ok": False, "message": message}, status_code=400
        )
    try:
        result = await rt.oauth.finish(state, code)
    except ConnectorError as exc:
        return rt.templates.TemplateResponse(
            request,
            "oauth_done.html",
            {"ok": False, "message": exc.message, "hint": exc.hint},
            status_code=400,
        )
    return rt.templates.TemplateResponse(request, "oauth_done.html", {"ok": True, "result": result})

"""The dashboard: server-rendered pages over the same health model and audit query as the API.

Pages: login and logout; **Connectors** (a grid: status, auth state, token expiry, circuit,
quota, error-rate and p95 sparklines, last error); a **connector** page (its checks and the
tenant's recent audit events for it); **Circuit breakers** (state, failure counts, next probe
time, a reset button for admins); **Audit** (a GET form of filters, cursor paging). Every page
is readable without JavaScript; ``static/app.js`` only refreshes the live pages in place.

Forms that change something are POSTs carrying the session's CSRF token. The login form has no
session yet: it uses a double-submit cookie, and attempts are limited per client address.
Templates receive views built from metadata only (names, states, counts, times): no page can
render a secret because no secret is ever handed to a template.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from connectors.access.roles import Permission
from connectors.audit.chain import ChainedEvent
from connectors.errors import InvalidRequest
from connectors.server.api_audit import AuditFilters, fetch_page
from connectors.server.api_health import check_csrf, reset_breaker, visible_connector
from connectors.server.auth import (
    LOGIN_CSRF_COOKIE,
    SESSION_COOKIE,
    Principal,
    current,
    require,
)
from connectors.server.health import ConnectorHealth
from connectors.server.runtime import ServerRuntime, runtime
from connectors.server.sparkline import sparkline

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Runtime = Annotated[ServerRuntime, Depends(runtime)]


def _context(
    request: Request, rt: ServerRuntime, principal: Principal, page: str, **extra: object
) -> dict[str, object]:
    return {
        "principal": principal,
        "tenant": principal.tenant,
        "role": principal.role.value,
        "csrf": rt.authenticator.csrf_token(principal),
        "page": page,
        "refresh": rt.settings.refresh_seconds,
        "can_check": principal.can(Permission.OPERATION_RUN),
        "can_reset": principal.can(Permission.CIRCUIT_RESET),
        "can_connect": principal.can(Permission.CREDENTIAL_WRITE),
        "can_audit": principal.can(Permission.AUDIT_READ),
        **extra,
    }


def _sparks(view: ConnectorHealth) -> dict[str, object]:
    series = view.recent.series
    return {
        "error_rate": sparkline(
            [b.error_rate for b in series], label=f"{view.connector} error rate, last 5 minutes"
        ),
        "p95": sparkline(
            [None if b.p95 is None else b.p95 * 1000 for b in series],
            label=f"{view.connector} p95 latency (ms), last 5 minutes",
        ),
    }


# --- login ---------------------------------------------------------------------------------------


@router.get("/login")
async def login_form(request: Request, rt: Runtime) -> Response:
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is not None and principal.via == "session":
        return RedirectResponse("/", status_code=303)
    # Reuse a pending nonce: a second tab (or a stray request) must not invalidate the first.
    nonce = _pending_nonce(request) or secrets.token_urlsafe(24)
    response = rt.templates.TemplateResponse(
        request, "login.html", {"login_csrf": nonce, "error": None, "page": "login"}
    )
    _set_cookie(response, rt, LOGIN_CSRF_COOKIE, nonce, max_age=1800)
    return response


@router.post("/login")
async def login(
    request: Request,
    rt: Runtime,
    token: Annotated[str, Form(max_length=200)] = "",
    csrf_token: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    address = request.client.host if request.client else "unknown"
    wait = await rt.limiter.hit(address)
    if wait is not None:
        return _login_error(request, rt, "Too many login attempts. Wait a few minutes.", 429, wait)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not secrets.compare_digest(cookie, csrf_token):
        return _login_error(request, rt, "The form expired. Please try again.", 403)
    principal = await rt.authenticator.from_bearer(f"Bearer {token.strip()}")
    if principal is None:
        return _login_error(request, rt, "That API token is not valid.", 401)
    value, _sid = rt.authenticator.open_session(principal)
    response = RedirectResponse("/", status_code=303)
    _set_cookie(response, rt, SESSION_COOKIE, value, max_age=int(rt.settings.session_lifetime))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


def _pending_nonce(request: Request) -> str | None:
    value = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return (
        value
        if 20 <= len(value) <= 64 and value.replace("-", "").replace("_", "").isalnum()
        else None
    )


def _login_error(
    request: Request, rt: ServerRuntime, message: str, status: int, retry_after: float | None = None
) -> Response:
    nonce = secrets.token_urlsafe(24)
    response = rt.templates.TemplateResponse(
        request,
        "login.html",
        {"login_csrf": nonce, "error": message, "page": "login"},
        status_code=status,
    )
    if retry_after is not None:
        response.headers["Retry-After"] = str(int(retry_after))
    _set_cookie(response, rt, LOGIN_CSRF_COOKIE, nonce, max_age=1800)
    return response


def _set_cookie(response: Response, rt: ServerRuntime, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=rt.settings.secure_cookies,
    )


@router.post("/logout")
async def logout(request: Request, rt: Runtime) -> Response:
    principal = current(request)
    await check_csrf(request, rt, principal)
    await rt.authenticator.close_session(principal)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# --- pages ---------------------------------------------------------------------------------------


@router.get("/", response_class=HTMLResponse)
async def connectors_page(
    request: Request,
    rt: Runtime,
    principal: Annotated[Principal, Depends(require(Permission.HEALTH_READ))],
) -> Response:
    views = await rt.model.views(principal.tenant)
    cards = [{"view": v, "spark": _sparks(v)} for v in views]
    return rt.templates.TemplateResponse(
        request, "connectors.html", _context(request, rt, principal, "connectors", cards=cards)
    )


@router.get("/connectors/{name}", response_class=HTMLResponse)
async def connector_page(
    name: str,
    request: Request,
    rt: Runtime,
    principal: Annotated[Principal, Depends(require(Permission.HEALTH_READ))],
) -> Response:
    visible_connector(rt, principal, name)
    view = await rt.model.view(principal.tenant, name)
    events: tuple[ChainedEvent, ...] = ()
    if principal.can(Permission.AUDIT_READ):
        page = await fetch_page(rt, principal.tenant, AuditFilters(connector=name, limit=20))
        events = page.events
    return rt.templates.TemplateResponse(
        request,
        "connector.html",
        _context(
            request, rt, principal, "connectors", view=view, spark=_sparks(view), events=events
        ),
    )


@router.post("/connectors/{name}/check")
async def check_from_page(
    name: str,
    request: Request,
    rt: Runtime,
    principal: Annotated[Principal, Depends(require(Permission.OPERATION_RUN))],
) -> Response:
    visible_connector(rt, principal, name)
    await check_csrf(request, rt, principal)
    await rt.prober.probe(principal.tenant, name)
    return RedirectResponse(f"/connectors/{name}", status_code=303)


@router.get("/circuits", response_class=HTMLResponse)
async def circuits_page(
    request: Request,
    rt: Runtime,
    principal: Annotated[Principal, Depends(require(Permission.HEALTH_READ))],
) -> Response:
    views = await rt.model.views(principal.tenant)
    return rt.templates.TemplateResponse(
        request, "circuits.html", _context(request, rt, principal, "circuits", views=views)
    )


@router.post("/circuits/{name}/reset")
async def reset_from_page(
    name: str,
    request: Request,
    rt: Runtime,
    principal: Annotated[Principal, Depends(require(Permission.CIRCUIT_RESET))],
) -> Response:
    visible_connector(rt, principal, name)
    await check_csrf(request, rt, principal)
    await reset_breaker(rt, principal.tenant, name, principal)
    return RedirectResponse("/circuits", status_code=303)


def _when(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise HTTPException(
            400, f"not a date and time: {value[:40]!r} (use 2024-05-06T07:08)"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed


Outcome = Literal["success", "failure", "denied"]


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request,
    rt: Runtime,
    principal: Annotated[Principal, Depends(require(Permission.AUDIT_READ))],
    connector: Annotated[str, Query(max_length=200)] = "",
    outcome: Annotated[str, Query(max_length=20)] = "",
    actor: Annotated[str, Query(max_length=200)] = "",
    kind: Annotated[str, Query(max_length=200)] = "",
    since: Annotated[str, Query(max_length=40)] = "",
    until: Annotated[str, Query(max_length=40)] = "",
    cursor: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    if outcome not in ("", "success", "failure", "denied"):
        raise HTTPException(400, "outcome must be success, failure or denied")
    chosen: Outcome | None = outcome or None  # type: ignore[assignment]
    filters = AuditFilters(
        since=_when(since),
        until=_when(until),
        connector=connector or None,
        outcome=chosen,
        actor=actor or None,
        kind=kind or None,
        limit=50,
        cursor=cursor or None,
    )
    try:
        page = await fetch_page(rt, principal.tenant, filters)
    except InvalidRequest as exc:
        raise HTTPException(400, exc.message) from exc
    form = {
        "connector": connector,
        "outcome": outcome,
        "actor": actor,
        "kind": kind,
        "since": since,
        "until": until,
    }
    next_url = None
    if page.next_cursor:
        next_url = "/audit?" + urlencode(
            {**{k: v for k, v in form.items() if v}, "cursor": page.next_cursor}
        )
    return rt.templates.TemplateResponse(
        request,
        "audit.html",
        _context(
            request,
            rt,
            principal,
            "audit",
            events=page.events,
            form=form,
            next_url=next_url,
            connectors=rt.model.connectors_for(principal.tenant),
        ),
    )

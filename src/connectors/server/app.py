"""The FastAPI application: :func:`create_app` wires the runtime, the gate and the routers.

Reading it top to bottom gives the request path: security headers › :class:`AuthGate` (deny by
default) › the route, whose dependency checks the role. Errors become JSON for API paths and a
small HTML page for dashboard paths; neither ever carries more than the error's own message,
which the error tree builds from identifiers and codes only.

The lifespan starts the Hub (schema, audit writer) and the periodic probes, and on shutdown
stops the probes, drains the audit writer of the server's event loop and releases database
connections. Without a lifespan (``httpx2.ASGITransport`` in
tests) the app still works; probes then run only on demand.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Final

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connectors.access.roles import Permission
from connectors.clock import Clock
from connectors.errors import (
    AuthenticationFailed,
    AuthorizationError,
    ConfigurationError,
    ConnectorError,
    NotFound,
    PermanentError,
)
from connectors.hub import Hub
from connectors.server import api_audit, api_health, api_metrics, api_oauth, api_webhooks, dashboard
from connectors.server.auth import AuthGate, Principal, require
from connectors.server.inbound import InboundRegistry
from connectors.server.runtime import PACKAGE_DIR, ServerRuntime
from connectors.server.settings import ServerSettings

__all__ = ["create_app"]

_HEADERS: Final = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"frame-ancestors 'none'; form-action 'self'",
    ),
)


class SecurityHeaders:
    """Adds the security headers, and ``Cache-Control: no-store`` outside ``/static``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = str(scope.get("path", "")).startswith("/static/")

        async def add_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(_HEADERS)
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, add_headers)


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith(("/api/", "/metrics", "/openapi")) or path == "/livez"


def _status_for(exc: ConnectorError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, AuthenticationFailed):
        return 400 if exc.provider_code == "invalid_state" else 401
    if isinstance(exc, AuthorizationError):
        return 403
    if isinstance(exc, PermanentError | ConfigurationError):
        return 400
    return 503


def _install_error_handlers(app: FastAPI, rt: ServerRuntime) -> None:
    def render(request: Request, status: int, message: str) -> Response:
        if _wants_json(request):
            return JSONResponse({"error": status, "message": message}, status_code=status)
        principal: Principal | None = getattr(request.state, "principal", None)
        return rt.templates.TemplateResponse(
            request,
            "error.html",
            {"status": status, "message": message, "principal": principal, "page": "error"},
            status_code=status,
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        response = render(request, exc.status_code, str(exc.detail))
        for key, value in (exc.headers or {}).items():
            response.headers[key] = value
        return response

    async def connector_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ConnectorError)
        message = exc.message + (f" Hint: {exc.hint}" if exc.hint else "")
        return render(request, _status_for(exc), message)

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', 'invalid')}"
            for e in exc.errors()[:5]
        )
        return render(request, 422, f"invalid request: {problems}")

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(ConnectorError, connector_error)
    app.add_exception_handler(RequestValidationError, validation_error)


def _filters(rt: ServerRuntime, clock: Clock) -> None:
    env = rt.templates.env

    def when(ts: float | None) -> str:
        if ts is None:
            return "—"
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    def ago(ts: float | None) -> str:
        if ts is None:
            return "never"
        delta = clock.time() - ts
        future = delta < 0
        delta = abs(delta)
        if delta < 90:
            text = f"{delta:.0f} s"
        elif delta < 5400:
            text = f"{delta / 60:.0f} min"
        elif delta < 172_800:
            text = f"{delta / 3600:.0f} h"
        else:
            text = f"{delta / 86400:.0f} d"
        return f"in {text}" if future else f"{text} ago"

    def pct(rate: float | None) -> str:
        return "—" if rate is None else f"{rate * 100:.1f} %"

    def ms(seconds: float | None) -> str:
        return "—" if seconds is None else f"{seconds * 1000:.0f} ms"

    env.filters.update(when=when, ago=ago, pct=pct, ms=ms)


def create_app(
    hub: Hub,
    *,
    settings: ServerSettings | None = None,
    inbound: InboundRegistry | None = None,
) -> FastAPI:
    """The server for ``hub``: health API, metrics, OAuth connect, webhooks and dashboard."""
    config = settings or ServerSettings()
    rt = ServerRuntime.build(hub, config, inbound)
    _filters(rt, hub.clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await hub.start(pool_connections=True)
        rt.prober.start()
        try:
            yield
        finally:
            await rt.prober.stop()
            # Drain this loop's audit writer and release connections (the Hub stays usable:
            # a later call opens new ones).
            await hub.aclose()

    app = FastAPI(
        title="Connector Framework server",
        version="1",
        summary="Connector health, audit, metrics, OAuth connect and inbound webhooks.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )
    app.state.runtime = rt
    app.state.hub = hub
    _install_error_handlers(app, rt)
    for module in (api_health, api_audit, api_metrics, api_oauth, api_webhooks, dashboard):
        app.include_router(module.router)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(
        principal: Annotated[Principal, Depends(require(Permission.HEALTH_READ))],
    ) -> JSONResponse:
        if app.openapi_schema is None:
            app.openapi_schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                routes=app.routes,
            )
            app.openapi_schema["components"] = {
                **app.openapi_schema.get("components", {}),
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            }
            app.openapi_schema["security"] = [{"bearer": []}]
        return JSONResponse(app.openapi_schema)

    app.mount("/static", StaticFiles(directory=str(PACKAGE_DIR / "static")), name="static")
    app.add_middleware(AuthGate, authenticator=lambda: rt.authenticator)
    app.add_middleware(SecurityHeaders)
    return app

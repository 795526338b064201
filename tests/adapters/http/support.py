"""Small provider APIs (Starlette, served in process) and a Hub for the declarative adapter."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from connectors.adapters.http import HttpConnector
from connectors.auth import InMemoryLockProvider, InMemoryTokenStore, TokenManager
from connectors.config.definition import ConnectorDefinition
from connectors.config.loader import load_definition_file
from connectors.config.settings import Settings
from connectors.hub import Hub
from connectors.registry import AdapterRegistry

ROOT = Path(__file__).resolve().parents[3]
TEMPLATES = ROOT / "templates" / "connectors"

T = TypeVar("T")

GITHUB_TOKEN = "ghp-token-0123456789"
STRIPE_KEY = "sk_test_0123456789abcdef"


def github_app(issues: int = 5, *, remaining: int = 4999, reset: str | None = None) -> Starlette:
    """Issues over Link-header pages; ``X-RateLimit-*`` on every answer."""
    data = [{"number": n, "title": f"issue {n}", "state": "open"} for n in range(1, issues + 1)]
    created: list[dict[str, object]] = []

    def headers(request: Request) -> dict[str, str]:
        out = {"X-RateLimit-Remaining": str(remaining)}
        if reset is not None:
            out["X-RateLimit-Reset"] = reset
        return out

    def authorised(request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {GITHUB_TOKEN}"

    async def list_issues(request: Request) -> Response:
        if not authorised(request):
            return JSONResponse({"message": "Bad credentials"}, 401)
        if request.path_params["repo"] != "app":
            return JSONResponse({"message": "Not Found"}, 404, headers=headers(request))
        if request.path_params["owner"] == "limited":
            return JSONResponse({"message": "API rate limit exceeded"}, 403)
        per_page = int(request.query_params.get("per_page", "30"))
        page = int(request.query_params.get("page", "1"))
        chunk = data[(page - 1) * per_page : page * per_page]
        extra = headers(request)
        if page * per_page < len(data):
            url = str(request.url.include_query_params(page=page + 1))
            extra["Link"] = f'<{url}>; rel="next", <{url}>; rel="last"'
        return JSONResponse(chunk, headers=extra)

    async def create_issue(request: Request) -> Response:
        body = await request.json()
        created.append(body)
        return JSONResponse({"number": 100 + len(created), **body}, 201)

    async def issues_route(request: Request) -> Response:
        if request.method == "POST":
            return await create_issue(request)
        return await list_issues(request)

    app = Starlette(
        routes=[Route("/repos/{owner}/{repo}/issues", issues_route, methods=["GET", "POST"])]
    )
    app.state.created = created
    return app


def stripe_app(customers: int = 7) -> Starlette:
    """Customers with ``starting_after`` cursor paging; charges with Stripe-style errors."""
    data = [{"id": f"cus_{n:03d}", "email": f"c{n}@example.com"} for n in range(customers)]
    keys: list[str] = []

    async def list_customers(request: Request) -> Response:
        if request.headers.get("authorization") != f"Bearer {STRIPE_KEY}":
            return JSONResponse({"error": {"type": "invalid_request_error"}}, 401)
        limit = int(request.query_params.get("limit", "10"))
        after = request.query_params.get("starting_after")
        start = 0 if after is None else [c["id"] for c in data].index(after) + 1
        chunk = data[start : start + limit]
        return JSONResponse(
            {"object": "list", "data": chunk, "has_more": start + limit < len(data)}
        )

    async def create_charge(request: Request) -> Response:
        body = await request.json()
        keys.append(request.headers.get("idempotency-key", ""))
        if body["customer"] == "cus_missing":
            return JSONResponse({"error": {"code": "resource_missing"}}, 404)
        if body["customer"] == "cus_busy":
            return JSONResponse({"error": {"code": "rate_limit"}}, 400)
        if body["amount"] == 0:
            error = {"type": "card_error", "code": "card_declined"}
            return JSONResponse({"error": error}, 402)
        return JSONResponse({"id": "ch_1", "amount": body["amount"], "paid": True})

    app = Starlette(
        routes=[
            Route("/v1/customers", list_customers),
            Route("/v1/charges", create_charge, methods=["POST"]),
        ]
    )
    app.state.keys = keys
    return app


def template(name: str) -> ConnectorDefinition:
    return load_definition_file(TEMPLATES / f"{name}.yaml").definition


def http_hub(
    tmp_path: Path,
    definitions: Mapping[str, ConnectorDefinition],
    transports: Mapping[str, httpx2.AsyncBaseTransport],
    *,
    credentials: Iterable[tuple[str, str, str, Mapping[str, object]]] = (),
    grants: Iterable[tuple[str, str, str]] = (("alice", "acme", "editor"),),
    tokens: TokenManager | None = None,
) -> Hub:
    """A Hub with the http adapter, the given definitions and transports, credentials stored
    as ``(tenant, name, value, metadata)`` and role grants."""
    registry = AdapterRegistry(discover=False, builtins={})
    registry.register(HttpConnector)
    hub = Hub(
        Settings.load({}, data_dir=tmp_path / "data", dev_mode=True),
        registry=registry,
        definitions=dict(definitions),
        transports=dict(transports),
        tokens=tokens or TokenManager(InMemoryTokenStore(), InMemoryLockProvider()),
    )

    async def setup() -> None:
        await hub.start()
        for actor, tenant, role in grants:
            await hub.services.access.grant(actor, tenant, role)
        for tenant, name, value, metadata in credentials:
            await hub.services.credentials.put(
                tenant, name, {"value": value}, metadata=dict(metadata), actor="test"
            )
        await hub.aclose()

    asyncio.run(setup())
    HUBS.append(hub)
    return hub


#: Hubs built by :func:`http_hub`; :func:`run` closes them inside the loop it ran in.
HUBS: list[Hub] = []


def run(coro: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` that also closes every test Hub's audit writer on that loop."""

    async def main() -> T:
        try:
            return await coro
        finally:
            for hub in HUBS:
                await hub.aclose()

    return asyncio.run(main())


def asgi(app: Starlette) -> httpx2.ASGITransport:
    return httpx2.ASGITransport(app=app)

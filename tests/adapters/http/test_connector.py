"""The declarative REST connector against small APIs served in process."""

from __future__ import annotations

import httpx2
import pytest

from connectors.adapters.http import HttpConnector
from connectors.base import Connector
from connectors.config.definition import ConnectorDefinition
from connectors.errors import (
    BlockedDestination,
    ConfigurationError,
    InvalidRequest,
    NotFound,
    PermanentError,
    RateLimited,
    ScopeDenied,
)
from connectors.hub import Hub
from connectors.testing.capture import metric_value
from connectors.testing.transport import MockRouter
from tests.adapters.http.support import (
    GITHUB_TOKEN,
    STRIPE_KEY,
    asgi,
    github_app,
    http_hub,
    run,
    stripe_app,
    template,
)


def github_hub(tmp_path, app=None, **kw) -> Hub:
    return http_hub(
        tmp_path,
        {"github": template("github_issues")},
        {"github": asgi(app or github_app())},
        credentials=[("acme", "github_token", GITHUB_TOKEN, {})],
        **kw,
    )


def stripe_hub(tmp_path, app=None) -> Hub:
    return http_hub(
        tmp_path,
        {"stripe": template("stripe_charges")},
        {"stripe": asgi(app or stripe_app())},
        credentials=[("acme", "stripe_api_key", STRIPE_KEY, {})],
    )


async def _audited(hub: Hub) -> list[tuple[str, str, str | None]]:
    await hub.services.flush()
    from connectors.audit.query import AuditQuery, list_events

    page = await list_events(hub.services.database, AuditQuery(tenant="acme", kind="operation"))
    return [(c.event.operation, c.event.outcome, c.event.error_code) for c in page.events]


def test_each_definition_gets_a_dedicated_class_with_real_operations(tmp_path):
    hub = github_hub(tmp_path)
    conn = hub.connector("github", tenant_id="acme", actor="alice")
    assert isinstance(conn, HttpConnector)
    assert type(conn) is not HttpConnector
    ops = type(conn).operations()
    assert set(ops) == {"list_issues", "get_issue", "create_issue"}
    assert ops["list_issues"].idempotent is True
    assert ops["create_issue"].idempotent is False
    assert ops["list_issues"].scopes == ("repo",)
    again = hub.connector("github", tenant_id="other", actor="alice")
    assert type(again) is type(conn)


def test_link_header_pages_are_followed_and_every_operation_is_audited_by_name(tmp_path):
    hub = github_hub(tmp_path)

    async def main():
        async with hub.open("github", tenant_id="acme", actor="alice") as gh:
            issues = await gh.call("list_issues", owner="acme", repo="app", per_page=2)
            streamed = [i async for i in gh.stream("list_issues", owner="acme", repo="app")]
            one = await gh.call("create_issue", owner="acme", repo="app", title="Bug")
        audited = await _audited(hub)
        return issues, streamed, one, audited

    issues, streamed, created, audited = run(main())
    assert [i["number"] for i in issues] == [1, 2, 3, 4, 5]
    assert [i["number"] for i in streamed] == [1, 2, 3, 4, 5]
    assert created == {"number": 101, "title": "Bug"}  # absent optional keys are not sent
    assert ("list_issues", "success", None) in audited
    assert ("create_issue", "success", None) in audited
    assert all(op != "call" for op, _, _ in audited)
    assert (
        metric_value(
            hub.metrics,
            "connector_operations_total",
            connector="github",
            tenant="acme",
            operation="list_issues",
            outcome="success",
        )
        == 2
    )


def test_quota_headers_feed_the_gauge(tmp_path):
    hub = github_hub(tmp_path, github_app(remaining=42))

    async def main():
        async with hub.open("github", tenant_id="acme", actor="alice") as gh:
            await gh.call("get_issue", owner="acme", repo="app", number=1)

    with pytest.raises(NotFound):  # /issues/1 is not served by the small API
        run(main())
    hub2 = github_hub(tmp_path / "2", github_app(remaining=42))

    async def listing():
        async with hub2.open("github", tenant_id="acme", actor="alice") as gh:
            await gh.call("list_issues", owner="acme", repo="app")

    run(listing())
    assert (
        metric_value(
            hub2.metrics,
            "connector_rate_limit_remaining",
            connector="github",
            tenant="acme",
            quota="requests",
        )
        == 42
    )


def test_an_exhausted_quota_holds_the_next_call_back_in_the_limiter(tmp_path):
    app = github_app(remaining=0, reset="30")
    hub = github_hub(tmp_path, app)
    seen: list[httpx2.Request] = []

    class Counting(httpx2.ASGITransport):
        async def handle_async_request(self, request):
            seen.append(request)
            return await super().handle_async_request(request)

    hub.transports["github"] = Counting(app=app)

    async def main():
        async with hub.open("github", tenant_id="acme", actor="alice") as gh:
            await gh.call("list_issues", owner="acme", repo="app")
            gh.runtime.deadline_seconds = 5.0  # shorter than the 30 s reset
            await gh.call("list_issues", owner="acme", repo="app")

    with pytest.raises(RateLimited) as info:
        run(main())
    assert len(seen) == 1  # the second call never left
    assert info.value.retry_after is not None
    assert info.value.retry_after > 25


def test_error_rules_map_status_and_body_to_typed_errors(tmp_path, no_waits):
    hub = github_hub(tmp_path)

    async def main(owner: str, repo: str):
        async with hub.open("github", tenant_id="acme", actor="alice") as gh:
            await gh.call("list_issues", owner=owner, repo=repo)

    with pytest.raises(NotFound, match="no such repository") as missing:
        run(main("acme", "nope"))
    assert missing.value.operation == "list_issues"
    assert missing.value.provider_code == "Not Found"
    with pytest.raises(RateLimited):
        run(main("limited", "app"))


def test_stripe_like_cursor_pages_on_the_last_item_and_maps_error_bodies(tmp_path, no_waits):
    app = stripe_app(customers=7)
    hub = stripe_hub(tmp_path, app)

    async def main():
        async with hub.open("stripe", tenant_id="acme", actor="alice") as st:
            customers = await st.call("list_customers", limit=3)
            charge = await st.call(
                "create_charge", amount=500, customer="cus_001", idempotency_key="k1"
            )
            errors = []
            for customer, amount in (("cus_missing", 1), ("cus_busy", 1), ("cus_001", 0)):
                try:
                    await st.call(
                        "create_charge", amount=amount, customer=customer, idempotency_key="k2"
                    )
                except Exception as exc:
                    errors.append(exc)
        return customers, charge, errors

    customers, charge, errors = run(main())
    assert [c["id"] for c in customers] == [f"cus_{n:03d}" for n in range(7)]
    assert charge["paid"] is True
    assert app.state.keys[0] == "k1"
    missing, busy, declined = errors
    assert isinstance(missing, NotFound)
    assert missing.provider_code == "resource_missing"
    assert isinstance(busy, RateLimited)
    assert isinstance(declined, InvalidRequest)
    assert "card was declined" in str(declined)


def _definition(pagination: dict, select: str | None = None) -> ConnectorDefinition:
    op: dict = {"path": "/items", "pagination": pagination}
    if select:
        op["select"] = select
    return ConnectorDefinition.model_validate(
        {
            "type": "http",
            "settings": {"base_url": "https://api.example.test"},
            "api": {"operations": {"items": op}},
        }
    )


def _paged(tmp_path, pagination, handler, select=None):
    router = MockRouter(base_url="https://api.example.test")
    router.get("/items").respond_sequence([handler], repeat_last=True)
    hub = http_hub(tmp_path, {"api": _definition(pagination, select)}, {"api": router.transport()})

    async def main():
        async with hub.open("api", tenant_id="acme", actor="alice") as conn:
            items = await conn.call("items")
        return items

    return run(main()), router


ITEMS = list(range(1, 8))


def test_offset_limit_pagination(tmp_path):
    def handler(request):
        offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
        return httpx2.Response(200, json={"rows": ITEMS[offset : offset + limit]})

    items, router = _paged(tmp_path, {"style": "offset", "page_size": 3}, handler, "rows[*]")
    assert items == ITEMS
    assert [c.url.params["offset"] for c in router.calls] == ["0", "3", "6"]


def test_page_number_pagination(tmp_path):
    def handler(request):
        page, size = int(request.url.params["page"]), int(request.url.params["per_page"])
        return httpx2.Response(200, json=ITEMS[(page - 1) * size : page * size])

    items, router = _paged(tmp_path, {"style": "page", "page_size": 2}, handler)
    assert items == ITEMS
    assert len(router.calls) == 4


def test_cursor_in_the_body_pagination(tmp_path):
    def handler(request):
        start = int(request.url.params.get("cursor", "0"))
        nxt = start + 3 if start + 3 < len(ITEMS) else None
        return httpx2.Response(200, json={"data": ITEMS[start : start + 3], "meta": {"next": nxt}})

    spec = {"style": "cursor", "param": "cursor", "cursor_path": "meta.next"}
    items, router = _paged(tmp_path, spec, handler, "data[*]")
    assert items == ITEMS
    assert len(router.calls) == 3


def test_next_url_in_the_body_pagination(tmp_path):
    def handler(request):
        start = int(request.url.params.get("from", "0"))
        nxt = f"/items?from={start + 4}" if start + 4 < len(ITEMS) else None
        return httpx2.Response(200, json={"items": ITEMS[start : start + 4], "next": nxt})

    spec = {"style": "next_url", "next_url_path": "next"}
    items, router = _paged(tmp_path, spec, handler, "items[*]")
    assert items == ITEMS
    assert len(router.calls) == 2


def test_a_next_link_to_another_origin_is_refused(tmp_path):
    def handler(request):
        return httpx2.Response(200, json={"items": [1], "next": "https://evil.test/steal"})

    spec = {"style": "next_url", "next_url_path": "next"}
    with pytest.raises(PermanentError, match=r"leaves https://api\.example\.test"):
        _paged(tmp_path, spec, handler, "items[*]")


def test_max_pages_bounds_a_provider_that_never_stops(tmp_path):
    def handler(request):
        return httpx2.Response(200, json={"items": [1], "next": "/items?again=1"})

    spec = {"style": "next_url", "next_url_path": "next", "max_pages": 5}
    items, _router = _paged(tmp_path, spec, handler, "items[*]")
    assert items == [1] * 5


def test_arguments_are_checked_before_any_request(tmp_path):
    hub = github_hub(tmp_path)

    async def main(**kwargs):
        async with hub.open("github", tenant_id="acme", actor="alice") as gh:
            await gh.call("list_issues", **kwargs)

    with pytest.raises(InvalidRequest, match="needs argument"):
        run(main(owner="acme"))
    with pytest.raises(InvalidRequest, match="did you mean 'state'"):
        run(main(owner="acme", repo="app", stat="open"))
    with pytest.raises(InvalidRequest, match="must be of type integer"):
        run(main(owner="acme", repo="app", per_page="many"))


def test_unknown_operations_suggest_the_closest(tmp_path):
    hub = github_hub(tmp_path)

    async def main():
        async with hub.open("github", tenant_id="acme", actor="alice") as gh:
            await gh.call("list_issue", owner="a", repo="b")

    with pytest.raises(ConfigurationError, match="did you mean 'list_issues'"):
        run(main())


def test_declared_scopes_are_enforced_per_operation(tmp_path):
    definition = template("github_issues").model_copy(
        update={
            "declared_settings": {
                "base_url": "https://api.github.com",
                "oauth_credential": "gh_oauth",
            }
        }
    )
    hub = http_hub(
        tmp_path,
        {"github": definition},
        {"github": asgi(github_app())},
        credentials=[
            ("acme", "github_token", GITHUB_TOKEN, {}),
            ("acme", "gh_oauth", "unused", {"scopes": ["read:user"]}),
        ],
    )
    log: list[httpx2.Request] = []

    async def main():
        async with hub.open("github", tenant_id="acme", actor="alice") as gh:
            await gh.call("list_issues", owner="acme", repo="app")

    # Caught when connecting (the compatibility check), before any request is sent.
    with pytest.raises(ScopeDenied) as info:
        run(main())
    assert info.value.missing == ("repo",)
    assert "list_issues" in str(info.value)
    assert log == []


def test_private_base_urls_are_refused_unless_the_definition_allows_them(tmp_path):
    def definition(allow: bool) -> ConnectorDefinition:
        return ConnectorDefinition.model_validate(
            {
                "type": "http",
                "settings": {"base_url": "http://127.0.0.1:9/"},
                "api": {
                    "network": {"allow_private_addresses": allow},
                    "operations": {"ping": {"path": "/ping"}},
                },
            }
        )

    router = MockRouter(base_url="http://127.0.0.1:9")
    router.get("/ping", json={"ok": True})
    refused = http_hub(tmp_path / "a", {"api": definition(False)}, {"api": router.transport()})
    allowed = http_hub(tmp_path / "b", {"api": definition(True)}, {"api": router.transport()})

    async def main(hub: Hub):
        async with hub.open("api", tenant_id="acme", actor="alice") as conn:
            return await conn.call("ping")

    with pytest.raises(BlockedDestination, match=r"127\.0\.0\.1"):
        run(main(refused))
    assert run(main(allowed)) == {"ok": True}


def test_oauth2_client_credentials_use_the_token_manager(tmp_path):
    definition = ConnectorDefinition.model_validate(
        {
            "type": "http",
            "auth": {
                "kind": "oauth2_client_credentials",
                "token_url": "https://auth.example.test/token",
                "client_id": "cid",
                "client_secret": "${secret:client_secret}",
                "scopes": ["items:read"],
            },
            "settings": {"base_url": "https://api.example.test"},
            "api": {"operations": {"items": {"path": "/items"}}},
        }
    )
    router = MockRouter()
    router.post(
        "https://auth.example.test/token",
        json={
            "access_token": "at-123456789",
            "token_type": "Bearer",
            "expires_in": 3600,
        },
    )

    def items(request):
        assert request.headers["authorization"] == "Bearer at-123456789"
        return httpx2.Response(200, json=[1, 2])

    router.get("https://api.example.test/items").respond_sequence([items], repeat_last=True)
    hub = http_hub(
        tmp_path,
        {"api": definition},
        {"api": router.transport()},
        credentials=[("acme", "client_secret", "s3cret-value", {})],
    )

    async def main():
        async with hub.open("api", tenant_id="acme", actor="alice") as conn:
            first = await conn.call("items")
            second = await conn.call("items")
        return first, second

    assert run(main()) == ([1, 2], [1, 2])
    token_calls = [c for c in router.calls if c.url.host == "auth.example.test"]
    assert len(token_calls) == 1
    assert b"scope=items%3Aread" in token_calls[0].content


def test_api_key_in_the_query_and_basic_auth(tmp_path):
    def definition(auth: dict) -> ConnectorDefinition:
        return ConnectorDefinition.model_validate(
            {
                "type": "http",
                "auth": auth,
                "settings": {"base_url": "https://api.example.test"},
                "api": {"operations": {"me": {"path": "/me"}}},
            }
        )

    seen: list[httpx2.Request] = []
    router = MockRouter(base_url="https://api.example.test")
    router.get("/me").respond_sequence(
        [lambda r: seen.append(r) or httpx2.Response(200, json={})], repeat_last=True
    )
    hub = http_hub(
        tmp_path,
        {
            "q": definition({"kind": "api_key", "key": "${secret:k}", "query": "api_key"}),
            "b": definition({"kind": "basic", "username": "bob", "password": "${secret:k}"}),
        },
        {"q": router.transport(), "b": router.transport()},
        credentials=[("acme", "k", "key-0123456789", {})],
    )

    async def main():
        for name in ("q", "b"):
            async with hub.open(name, tenant_id="acme", actor="alice") as conn:
                await conn.call("me")

    run(main())
    assert seen[0].url.params["api_key"] == "key-0123456789"
    assert seen[1].headers["authorization"].startswith("Basic ")


def test_the_generic_class_needs_an_api_block(tmp_path):
    hub = http_hub(tmp_path, {}, {})
    with pytest.raises(ConfigurationError, match="needs an `api` block"):
        hub.connector("http", tenant_id="acme")


def test_sync_face_calls_declared_operations(tmp_path):
    import connectors
    from connectors.sync import background_loop

    hub = github_hub(tmp_path)
    gh = connectors.get_connector("github", tenant_id="acme", actor="alice", hub=hub)
    try:
        assert len(gh.list_issues(owner="acme", repo="app")) == 5
        assert [i["number"] for i in gh.stream("list_issues", owner="acme", repo="app")][:2] == [
            1,
            2,
        ]
    finally:
        gh.close()
        background_loop().run(hub.aclose())
    assert isinstance(gh.connector, Connector)

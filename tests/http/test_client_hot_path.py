"""ConnectorHttpClient's hot-path shortcuts: the merged-URL cache and the deferred build.

The cache holds only what httpx2 would compute from the URL string and the base URL, so it can
never serve another call's headers, tenant or body; the deferred build only applies when no
caller input could fail to encode, so every input error still surfaces before any policy runs.
"""

from __future__ import annotations

import asyncio

import httpx2
import pytest

from connectors.clock import FakeClock
from connectors.context import CallContext
from connectors.errors import CircuitOpen, InvalidRequest
from connectors.http import ConnectorHttpClient
from connectors.http import client as client_module
from connectors.resilience import Pipeline, ResiliencePolicy
from connectors.state import MemoryStateBackend

BASE = "https://api.example.com/base"


def pipeline() -> Pipeline:
    return Pipeline("demo", ResiliencePolicy(), state=MemoryStateBackend(), clock=FakeClock())


def recording_client(
    seen: list[httpx2.Request], *, base_url: str = BASE, pipe: Pipeline | None = None
) -> ConnectorHttpClient:
    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json={"ok": True})

    return ConnectorHttpClient(
        "demo",
        pipeline=pipe or pipeline(),
        base_url=base_url,
        transport=httpx2.MockTransport(handler),
    )


def ctx(tenant: str = "acme") -> CallContext:
    return CallContext(tenant=tenant, actor="alice")


def test_cached_urls_match_what_httpx2_builds_from_the_string() -> None:
    seen: list[httpx2.Request] = []
    urls = ["/a", "b/c", "/a?x=1", "/a", "https://other.example.org/abs?q=%20", "/a?x=1"]

    async def main() -> None:
        async with recording_client(seen) as client:
            reference = httpx2.AsyncClient(base_url=BASE)
            for url in urls:
                await client.request("GET", url, ctx=ctx(), operation="op")
                assert seen[-1].url == reference.build_request("GET", url).url
            await reference.aclose()

    asyncio.run(main())
    assert [str(r.url) for r in seen] == [
        "https://api.example.com/base/a",
        "https://api.example.com/base/b/c",
        "https://api.example.com/base/a?x=1",
        "https://api.example.com/base/a",
        "https://other.example.org/abs?q=%20",
        "https://api.example.com/base/a?x=1",
    ]


def test_cached_url_combines_with_each_calls_own_params() -> None:
    seen: list[httpx2.Request] = []

    async def main() -> None:
        async with recording_client(seen) as client:
            await client.request("GET", "/q", ctx=ctx(), operation="op", params={"n": "1"})
            await client.request("GET", "/q", ctx=ctx(), operation="op", params={"n": "2"})
            await client.request("GET", "/q", ctx=ctx(), operation="op")

    asyncio.run(main())
    assert [str(r.url) for r in seen] == [
        "https://api.example.com/base/q?n=1",
        "https://api.example.com/base/q?n=2",
        "https://api.example.com/base/q",
    ]


def test_two_tenants_on_one_url_keep_their_own_request_ids_and_headers() -> None:
    seen: list[httpx2.Request] = []
    a, b = ctx("tenant-a"), ctx("tenant-b")

    async def main() -> None:
        async with recording_client(seen) as client:
            await client.request("GET", "/same", ctx=a, operation="op", headers={"X-T": "a"})
            await client.request("GET", "/same", ctx=b, operation="op")
            await client.request("GET", "/same", ctx=a, operation="op")

    asyncio.run(main())
    assert [r.headers["X-Request-Id"] for r in seen] == [a.request_id, b.request_id, a.request_id]
    assert [r.headers.get("X-T") for r in seen] == ["a", None, None]
    assert len({str(r.url) for r in seen}) == 1


def test_a_changed_base_url_is_not_served_from_the_cache() -> None:
    seen: list[httpx2.Request] = []

    async def main() -> None:
        async with recording_client(seen) as client:
            await client.request("GET", "/p", ctx=ctx(), operation="op")
            client._client.base_url = "https://moved.example.com/v2"
            await client.request("GET", "/p", ctx=ctx(), operation="op")

    asyncio.run(main())
    assert [str(r.url) for r in seen] == [
        "https://api.example.com/base/p",
        "https://moved.example.com/v2/p",
    ]


def test_the_url_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "_URL_CACHE_LIMIT", 8)
    seen: list[httpx2.Request] = []

    async def main() -> ConnectorHttpClient:
        async with recording_client(seen) as client:
            for i in range(50):
                await client.request("GET", f"/r/{i}", ctx=ctx(), operation="op")
                assert len(client._urls) <= 8
            return client

    asyncio.run(main())
    assert str(seen[-1].url) == "https://api.example.com/base/r/49"


def test_an_invalid_url_fails_typed_every_time_and_is_never_cached() -> None:
    seen: list[httpx2.Request] = []

    async def main() -> ConnectorHttpClient:
        async with recording_client(seen) as client:
            for _ in range(2):
                with pytest.raises(InvalidRequest):
                    await client.request("GET", "/bad\nurl", ctx=ctx(), operation="op")
            return client

    client = asyncio.run(main())
    assert seen == []
    assert client._urls == {}


def test_an_open_circuit_rejects_a_plain_get_without_sending() -> None:
    seen: list[httpx2.Request] = []
    pipe = pipeline()

    async def main() -> None:
        await pipe.force_open_breaker("acme")
        async with recording_client(seen, pipe=pipe) as client:
            with pytest.raises(CircuitOpen):
                await client.request("GET", "/p", ctx=ctx(), operation="op")

    asyncio.run(main())
    assert seen == []


def test_a_body_that_cannot_be_encoded_still_fails_before_the_breaker() -> None:
    """The deferred build only covers URL-only requests: an encoding error is raised first,
    even with an open circuit, exactly as before."""
    pipe = pipeline()

    async def main() -> None:
        await pipe.force_open_breaker("acme")
        async with recording_client([], pipe=pipe) as client:
            with pytest.raises(TypeError):
                await client.request("POST", "/p", ctx=ctx(), operation="op", json=object())

    asyncio.run(main())


def test_a_deferred_request_is_built_once_per_attempt() -> None:
    seen: list[httpx2.Request] = []

    async def main() -> None:
        async with recording_client(seen) as client:
            response = await client.request("GET", "/p", ctx=ctx(), operation="op")
            assert response.json() == {"ok": True}

    asyncio.run(main())
    assert len(seen) == 1
    assert seen[0].method == "GET"


@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("GET", {}),
        ("GET", {"params": {"q": "1"}}),
        ("DELETE", {}),
        ("POST", {"json": {"a": 1}}),
        ("GET", {"headers": {"x-request-id": "caller", "X-Extra": "1"}}),
    ],
)
def test_the_request_id_header_goes_out_exactly_as_a_merged_header_would(method, options):
    """Bodiless requests get X-Request-Id set after the build: same headers, same order."""
    seen: list[httpx2.Request] = []
    call = ctx()

    async def main() -> None:
        async with recording_client(seen) as client:
            await client.request(method, "/p", ctx=call, operation="op", **options)
            reference = client._client.build_request(
                method,
                "/p",
                params=options.get("params"),
                json=options.get("json"),
                headers={**options.get("headers", {}), "X-Request-Id": call.request_id},
            )
            assert seen[-1].headers.raw == reference.headers.raw

    asyncio.run(main())
    assert call.request_id in seen[-1].headers.get_list("X-Request-Id")

"""ConnectorHttpClient: pipeline per attempt, timeouts, typed errors with context, retries."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field

import httpx2
import pytest

from connectors.clock import FakeClock
from connectors.context import CallContext, Deadline
from connectors.errors import (
    AmbiguousOutcome,
    CircuitOpen,
    ConnectionFailed,
    DeadlineExceeded,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServiceUnavailable,
)
from connectors.http import ACCEPT, ConnectorHttpClient, ResponseClassifier, user_agent
from connectors.resilience import Pipeline, RateLimit, ResiliencePolicy, RetryPolicy
from connectors.state import MemoryStateBackend
from connectors.testing.transport import MockRouter, UnmatchedRequest

BASE = "https://api.example.com"


# --- the real pipeline, on a fake clock, with a spy that records what the client passes ------


def real_pipeline(clock: FakeClock | None = None, **policy) -> Pipeline:
    return Pipeline(
        "demo",
        ResiliencePolicy(**policy),
        state=MemoryStateBackend(),
        clock=clock or FakeClock(),
    )


@dataclass
class SpyPipeline:
    """Delegates to a real Pipeline and records the keyword arguments of each execute()."""

    inner: Pipeline = field(default_factory=real_pipeline)
    executions: list[dict[str, object]] = field(default_factory=list)

    async def execute(self, fn, **kw):
        self.executions.append({k: v for k, v in kw.items() if k != "ctx"})
        return await self.inner.execute(fn, **kw)


def make_client(router: MockRouter, pipeline=None, **kw) -> ConnectorHttpClient:
    return ConnectorHttpClient(
        "demo",
        base_url=BASE,
        pipeline=pipeline or real_pipeline(),
        transport=router.transport(),
        **kw,
    )


def ctx(**kw) -> CallContext:
    return CallContext(tenant="acme", request_id="req-123", **kw)


def run(coro):
    return asyncio.run(coro)


# --- success, headers, timeouts -----------------------------------------------------------------


def test_get_returns_the_response_with_its_body_read():
    router = MockRouter(base_url=BASE)
    router.get("/v1/users", json=[{"id": 1}])

    async def main():
        async with make_client(router) as client:
            resp = await client.get("/v1/users", ctx=ctx(), operation="list_users")
            return resp.json()

    assert run(main()) == [{"id": 1}]


def test_every_request_carries_the_request_id_and_user_agent():
    router = MockRouter(base_url=BASE)
    router.get("/x")

    async def main():
        async with make_client(router, headers={"Accept": "application/json"}) as client:
            await client.get("/x", ctx=ctx(), operation="op", headers={"X-Request-Id": "spoof"})

    run(main())
    headers = router.calls[0].headers
    assert headers["x-request-id"] == "req-123"
    assert headers["user-agent"] == user_agent() == "connectors/0.1.0"
    assert headers["accept"] == "application/json"


def test_default_headers_can_override_the_user_agent():
    router = MockRouter(base_url=BASE)
    router.get("/x")

    async def main():
        async with make_client(router, headers={"User-Agent": "acme-bot/2"}) as client:
            await client.get("/x", ctx=ctx(), operation="op")

    run(main())
    assert router.calls[0].headers["user-agent"] == "acme-bot/2"


def test_attempt_timeout_is_passed_to_httpx_for_every_phase():
    seen = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.extensions["timeout"])
        return httpx2.Response(200)

    router = MockRouter(base_url=BASE)
    router.add("GET", "/x", handler)

    async def main():
        async with make_client(router, real_pipeline(attempt_timeout=2.5)) as client:
            await client.get("/x", ctx=ctx(), operation="op")

    run(main())
    assert seen == [{"connect": 2.5, "read": 2.5, "write": 2.5, "pool": 2.5}]


def test_each_retry_gets_the_timeout_of_its_own_attempt():
    clock = FakeClock()
    seen = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.extensions["timeout"]["read"])
        return httpx2.Response(503, headers={"Retry-After": "4"})

    router = MockRouter(base_url=BASE)
    router.add("GET", "/x", handler)
    pipeline = real_pipeline(clock, attempt_timeout=100.0)

    async def main():
        async with make_client(router, pipeline) as client:
            call = ctx(deadline=Deadline.after(10.0, clock))
            with pytest.raises(RateLimited):
                await client.get("/x", ctx=call, operation="op")

    run(main())
    assert seen == [10.0, 6.0, 2.0]


def test_an_unbounded_attempt_means_no_httpx_timeout():
    seen = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.extensions["timeout"])
        return httpx2.Response(200)

    router = MockRouter(base_url=BASE)
    router.add("GET", "/x", handler)

    async def main():
        async with make_client(router, real_pipeline(attempt_timeout=math.inf)) as client:
            await client.get("/x", ctx=ctx(), operation="op")

    run(main())
    assert seen == [{"connect": None, "read": None, "write": None, "pool": None}]


def test_pipeline_receives_operation_limits_breaker_and_no_timeout_enforcement():
    router = MockRouter(base_url=BASE)
    router.post("/x")
    pipeline = SpyPipeline()
    limits = (RateLimit(key="api", rate=100.0, burst=10.0),)

    async def main():
        async with make_client(router, pipeline) as client:
            await client.post(
                "/x", ctx=ctx(), operation="create", rate_limits=limits, breaker_key="demo:api"
            )

    run(main())
    assert pipeline.executions == [
        {
            "operation": "create",
            "idempotent": False,
            "rate_limits": limits,
            "breaker_key": "demo:api",
            "enforce_timeout": False,
        }
    ]


@pytest.mark.parametrize(
    ("method", "idempotent"),
    [
        ("GET", True),
        ("HEAD", True),
        ("OPTIONS", True),
        ("PUT", True),
        ("DELETE", True),
        ("POST", False),
        ("PATCH", False),
        ("get", True),
        ("post", False),
    ],
)
def test_idempotency_defaults_from_the_method(method, idempotent):
    router = MockRouter(base_url=BASE)
    router.add("*", "/x")
    pipeline = SpyPipeline()

    async def main():
        async with make_client(router, pipeline) as client:
            await client.request(method, "/x", ctx=ctx(), operation="op")

    run(main())
    assert pipeline.executions[0]["idempotent"] is idempotent


def test_explicit_idempotent_overrides_the_method_default():
    router = MockRouter(base_url=BASE)
    router.post("/upsert")
    pipeline = SpyPipeline()

    async def main():
        async with make_client(router, pipeline) as client:
            await client.post("/upsert", ctx=ctx(), operation="upsert", idempotent=True)

    run(main())
    assert pipeline.executions[0]["idempotent"] is True


def test_shortcuts_send_their_method_and_body():
    router = MockRouter(base_url=BASE)
    for method in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        router.add(method, "/r")

    async def main():
        async with make_client(router) as client:
            await client.get("/r", ctx=ctx(), operation="op", params={"q": "1"})
            await client.post("/r", ctx=ctx(), operation="op", json={"a": 1})
            await client.put("/r", ctx=ctx(), operation="op", content=b"raw")
            await client.patch("/r", ctx=ctx(), operation="op", data={"f": "v"})
            await client.delete("/r", ctx=ctx(), operation="op")

    run(main())
    assert [c.method for c in router.calls] == ["GET", "POST", "PUT", "PATCH", "DELETE"]
    assert router.calls[0].url.params["q"] == "1"
    assert router.calls[1].json() == {"a": 1}
    assert router.calls[2].content == b"raw"
    assert router.calls[3].content == b"f=v"


# --- typed errors -----------------------------------------------------------------------------


def test_a_classified_error_is_raised_with_full_context():
    router = MockRouter(base_url=BASE)
    router.get("/v1/users/9", status=404, json={"error": "no such user"})

    async def main():
        async with make_client(router) as client:
            await client.get("/v1/users/9", ctx=ctx(), operation="get_user")

    with pytest.raises(NotFound) as info:
        run(main())
    err = info.value
    assert (err.connector, err.tenant, err.operation, err.request_id, err.status) == (
        "demo",
        "acme",
        "get_user",
        "req-123",
        404,
    )
    assert "no such user" in err.message


def test_transport_failures_are_raised_as_typed_errors_chained_to_the_cause():
    router = MockRouter(base_url=BASE)
    router.post("/x").raises(httpx2.RemoteProtocolError)

    async def main():
        async with make_client(router) as client:
            await client.post("/x", ctx=ctx(), operation="create")

    with pytest.raises(AmbiguousOutcome) as info:
        run(main())
    assert isinstance(info.value.__cause__, httpx2.RemoteProtocolError)
    assert info.value.connector == "demo"
    assert info.value.request_id == "req-123"


def test_errors_raised_by_the_pipeline_itself_get_context():
    class OpenBreaker:
        async def execute(self, fn, **kw):
            raise CircuitOpen(retry_after=5.0)

    router = MockRouter(base_url=BASE)

    async def main():
        async with make_client(router, OpenBreaker()) as client:
            await client.get("/x", ctx=ctx(), operation="op")

    with pytest.raises(CircuitOpen) as info:
        run(main())
    assert (info.value.connector, info.value.tenant, info.value.operation) == (
        "demo",
        "acme",
        "op",
    )
    assert router.calls == []


def test_foreign_exceptions_pass_through_untranslated():
    router = MockRouter(base_url=BASE)  # no routes: the router raises UnmatchedRequest

    async def main():
        async with make_client(router) as client:
            await client.get("/x", ctx=ctx(), operation="op")

    with pytest.raises(UnmatchedRequest):
        run(main())
    assert len(router.calls) == 1


def test_an_invalid_url_is_an_invalid_request():
    router = MockRouter(base_url=BASE)

    async def main():
        async with make_client(router) as client:
            await client.get("http://[::1", ctx=ctx(), operation="op")

    with pytest.raises(InvalidRequest) as info:
        run(main())
    assert info.value.operation == "op"


def test_a_per_request_classifier_replaces_the_default():
    router = MockRouter(base_url=BASE)
    router.delete("/x", status=404)

    def accept_404(resp, c):
        return ACCEPT if resp.status_code == 404 else None

    lenient = ResponseClassifier().with_rules(accept_404)

    async def main():
        async with make_client(router) as client:
            resp = await client.delete("/x", ctx=ctx(), operation="op", classifier=lenient)
            with pytest.raises(NotFound):
                await client.delete("/x", ctx=ctx(), operation="op")
            return resp.status_code

    assert run(main()) == 404


# --- retries through the pipeline -------------------------------------------------------------


def test_503_503_200_succeeds_on_the_third_attempt():
    router = MockRouter(base_url=BASE)
    route = router.get("/x").respond_sequence([503, 503, {"ok": True}])

    async def main():
        async with make_client(router) as client:
            return (await client.get("/x", ctx=ctx(), operation="op")).json()

    assert run(main()) == {"ok": True}
    assert route.call_count == 3


def test_retry_after_of_a_429_reaches_the_pipeline():
    clock = FakeClock()
    router = MockRouter(base_url=BASE)
    router.get("/x").respond_sequence(
        [httpx2.Response(429, headers={"Retry-After": "7"}), httpx2.Response(200)]
    )
    pipeline = real_pipeline(clock)

    async def main():
        async with make_client(router, pipeline, clock=clock) as client:
            await client.get("/x", ctx=ctx(), operation="op")

    run(main())
    assert clock.sleeps == [7.0]


def test_post_with_connection_dropped_after_send_is_not_retried():
    router = MockRouter(base_url=BASE)
    route = router.post("/x").respond_sequence([httpx2.RemoteProtocolError, {"id": 1}])

    async def main():
        async with make_client(router) as client:
            await client.post("/x", ctx=ctx(), operation="create", json={"n": 1})

    with pytest.raises(AmbiguousOutcome):
        run(main())
    assert route.call_count == 1


def test_get_with_connection_dropped_after_send_is_retried():
    router = MockRouter(base_url=BASE)
    route = router.get("/x").respond_sequence([httpx2.ReadError, {"id": 1}])

    async def main():
        async with make_client(router) as client:
            return (await client.get("/x", ctx=ctx(), operation="op")).json()

    assert run(main()) == {"id": 1}
    assert route.call_count == 2


def test_post_with_connect_error_is_retried_with_the_same_body():
    router = MockRouter(base_url=BASE)
    route = router.post("/x").respond_sequence([httpx2.ConnectError, {"id": 1}])

    async def main():
        async with make_client(router) as client:
            resp = await client.post("/x", ctx=ctx(), operation="create", json={"n": 1})
            return resp.json()

    assert run(main()) == {"id": 1}
    assert route.call_count == 2
    assert [c.json() for c in route.calls] == [{"n": 1}, {"n": 1}]
    assert {c.headers["x-request-id"] for c in route.calls} == {"req-123"}


def test_post_with_connect_timeout_is_retried():
    router = MockRouter(base_url=BASE)
    route = router.post("/x").respond_sequence([httpx2.ConnectTimeout, 201])

    async def main():
        async with make_client(router) as client:
            return (await client.post("/x", ctx=ctx(), operation="create")).status_code

    assert run(main()) == 201
    assert route.call_count == 2


def test_persistent_5xx_surfaces_the_last_error_after_the_attempts():
    router = MockRouter(base_url=BASE)
    route = router.get("/x", status=502, text="bad gateway")

    async def main():
        async with make_client(router) as client:
            await client.get("/x", ctx=ctx(), operation="op")

    with pytest.raises(ServiceUnavailable) as info:
        run(main())
    assert route.call_count == 3
    assert info.value.message.endswith(": bad gateway")


def test_connection_failures_keep_request_sent_false_for_the_pipeline():
    router = MockRouter(base_url=BASE)
    router.post("/x").raises(httpx2.ConnectError)

    async def main():
        async with make_client(router, real_pipeline(retry=RetryPolicy(max_attempts=1))) as client:
            await client.post("/x", ctx=ctx(), operation="create")

    with pytest.raises(ConnectionFailed) as info:
        run(main())
    assert info.value.request_sent is False


# --- streaming --------------------------------------------------------------------------------


def test_stream_yields_an_open_response_and_closes_it_afterwards():
    async def rows():
        yield b"a,b\n"
        yield b"1,2\n"

    router = MockRouter(base_url=BASE)
    router.add("GET", "/export", lambda request: httpx2.Response(200, content=rows()))

    async def main():
        async with make_client(router) as client:
            async with client.stream("GET", "/export", ctx=ctx(), operation="export") as resp:
                assert not resp.is_closed
                body = b"".join([chunk async for chunk in resp.aiter_bytes()])
            return body, resp.is_closed

    assert run(main()) == (b"a,b\n1,2\n", True)


def test_streamed_error_carries_the_body_excerpt_and_is_closed():
    router = MockRouter(base_url=BASE)
    router.get("/export", status=400, text="bad export query")

    async def main():
        async with (
            make_client(router) as client,
            client.stream("GET", "/export", ctx=ctx(), operation="export"),
        ):
            raise AssertionError("not reached")

    with pytest.raises(InvalidRequest) as info:
        run(main())
    assert info.value.message.endswith(": bad export query")


# --- observer, construction, lifecycle --------------------------------------------------------


def test_observer_hears_every_attempt_with_its_status_class():
    events = []
    clock = FakeClock()
    router = MockRouter(base_url=BASE)
    router.get("/x").respond_sequence([httpx2.ConnectError, 503, 200])

    def observer(connector, tenant, operation, status_class, duration):
        events.append((connector, tenant, operation, status_class, duration))

    async def main():
        async with make_client(
            router, real_pipeline(clock), clock=clock, observer=observer
        ) as client:
            await client.get("/x", ctx=ctx(), operation="op")

    run(main())
    assert events == [
        ("demo", "acme", "op", "connection_failed", 0.0),
        ("demo", "acme", "op", "5xx", 0.0),
        ("demo", "acme", "op", "2xx", 0.0),
    ]


def test_observer_duration_is_measured_on_the_injected_clock():
    clock = FakeClock()
    durations = []

    def handler(request):
        clock.advance(0.25)
        return httpx2.Response(200)

    router = MockRouter(base_url=BASE)
    router.add("GET", "/x", handler)

    async def main():
        async with make_client(
            router, clock=clock, observer=lambda *a: durations.append(a[-1])
        ) as client:
            await client.get("/x", ctx=ctx(), operation="op")

    run(main())
    assert durations == [0.25]


def test_transport_factory_builds_the_transport_with_pool_settings():
    router = MockRouter(base_url=BASE)
    router.get("/x")
    seen = {}

    def factory(*, limits, http2):
        seen.update(limits=limits, http2=http2)
        return router.transport()

    limits = httpx2.Limits(max_connections=7)

    async def main():
        client = ConnectorHttpClient(
            "demo",
            base_url=BASE,
            pipeline=real_pipeline(),
            transport_factory=factory,
            limits=limits,
        )
        async with client:
            await client.get("/x", ctx=ctx(), operation="op")

    run(main())
    assert seen == {"limits": limits, "http2": False}
    assert len(router.calls) == 1


def test_transport_and_transport_factory_are_mutually_exclusive():
    router = MockRouter()
    with pytest.raises(ValueError, match="either transport or transport_factory"):
        ConnectorHttpClient(
            "demo",
            pipeline=real_pipeline(),
            transport=router.transport(),
            transport_factory=lambda **kw: router.transport(),
        )


def test_auth_flow_runs_on_every_attempt():
    class Bearer(httpx2.Auth):
        def __init__(self):
            self.calls = 0

        def auth_flow(self, request):
            self.calls += 1
            request.headers["Authorization"] = f"Bearer t{self.calls}"
            yield request

    auth = Bearer()
    router = MockRouter(base_url=BASE)
    route = router.get("/x").respond_sequence([503, 200])

    async def main():
        async with make_client(router, auth=auth) as client:
            await client.get("/x", ctx=ctx(), operation="op")

    run(main())
    assert [c.headers["authorization"] for c in route.calls] == ["Bearer t1", "Bearer t2"]


def test_aclose_closes_the_pool_and_repr_shows_no_secret():
    router = MockRouter(base_url=BASE)

    async def main():
        client = make_client(router)
        assert not client.is_closed
        await client.aclose()
        return client

    client = run(main())
    assert client.is_closed
    assert (
        repr(client) == "ConnectorHttpClient(connector='demo', base_url='https://api.example.com')"
    )


def test_a_streamed_error_is_closed_and_the_retry_streams_the_success():
    async def rows():
        yield b"ok"

    router = MockRouter(base_url=BASE)
    route = router.get("/export").respond_sequence(
        [503, lambda request: httpx2.Response(200, content=rows())]
    )

    async def main():
        async with (
            make_client(router) as client,
            client.stream("GET", "/export", ctx=ctx(), operation="export") as resp,
        ):
            return await resp.aread()

    assert run(main()) == b"ok"
    assert route.call_count == 2


def test_a_deadline_already_passed_fails_before_sending():
    clock = FakeClock()
    router = MockRouter(base_url=BASE)
    router.get("/x")

    async def main():
        async with make_client(router, real_pipeline(clock)) as client:
            call = ctx(deadline=Deadline.after(-1.0, clock))
            await client.get("/x", ctx=call, operation="op")

    with pytest.raises(DeadlineExceeded) as info:
        run(main())
    assert (info.value.connector, info.value.operation, info.value.request_id) == (
        "demo",
        "op",
        "req-123",
    )
    assert router.calls == []

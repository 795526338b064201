"""MockRouter and asgi_transport: adapter tests without a network."""

from __future__ import annotations

import asyncio
import re

import httpx2
import pytest

from connectors.testing.transport import (
    MockRouter,
    RouteExhausted,
    UnmatchedRequest,
    asgi_transport,
)


def run(coro):
    return asyncio.run(coro)


async def send(router: MockRouter, method: str, url: str, **kw) -> httpx2.Response:
    async with httpx2.AsyncClient(transport=router.transport()) as client:
        return await client.request(method, url, **kw)


def test_get_route_answers_json_with_status_and_headers():
    router = MockRouter()
    router.get("/users", json={"n": 1}, status=201, headers={"X-Rate": "9"})
    resp = run(send(router, "GET", "https://api.test/users"))
    assert (resp.status_code, resp.json(), resp.headers["x-rate"]) == (201, {"n": 1}, "9")


def test_text_and_bytes_bodies():
    router = MockRouter()
    router.get("/t", text="hello")
    router.get("/b", content=b"\x00\x01")
    assert run(send(router, "GET", "https://api.test/t")).text == "hello"
    assert run(send(router, "GET", "https://api.test/b")).content == b"\x00\x01"


def test_only_one_body_kind_may_be_given():
    with pytest.raises(ValueError, match="at most one"):
        MockRouter().get("/x", json={}, text="x")


def test_method_must_match():
    router = MockRouter()
    router.post("/x")
    with pytest.raises(UnmatchedRequest, match=re.escape("no route for GET https://api.test/x")):
        run(send(router, "GET", "https://api.test/x"))


def test_each_shortcut_registers_its_method():
    router = MockRouter()
    router.put("/x", status=200)
    router.patch("/x", status=202)
    router.delete("/x")
    assert run(send(router, "PUT", "https://api.test/x")).status_code == 200
    assert run(send(router, "PATCH", "https://api.test/x")).status_code == 202
    assert run(send(router, "DELETE", "https://api.test/x")).status_code == 204


def test_regex_paths_match_in_full():
    router = MockRouter()
    router.get(re.compile(r"/users/\d+"), json={"ok": True})
    assert run(send(router, "GET", "https://api.test/users/42")).json() == {"ok": True}
    with pytest.raises(UnmatchedRequest):
        run(send(router, "GET", "https://api.test/users/42/extra"))


def test_a_full_url_route_matches_host_and_path_ignoring_the_query():
    router = MockRouter()
    router.get("https://login.test/oauth/token", json={"t": 1})
    assert run(send(router, "GET", "https://login.test/oauth/token?x=1")).json() == {"t": 1}
    with pytest.raises(UnmatchedRequest):
        run(send(router, "GET", "https://other.test/oauth/token"))


def test_base_url_path_prefixes_relative_routes():
    router = MockRouter(base_url="https://api.test/services/v59/")
    router.get("query", json=[])
    assert run(send(router, "GET", "https://api.test/services/v59/query")).json() == []


def test_star_method_matches_any_method():
    router = MockRouter()
    router.add("*", "/any", 204)
    assert run(send(router, "OPTIONS", "https://api.test/any")).status_code == 204


def test_first_matching_route_wins():
    router = MockRouter()
    router.get("/x", text="first")
    router.get("/x", text="second")
    assert run(send(router, "GET", "https://api.test/x")).text == "first"


def test_add_accepts_sync_and_async_handlers():
    async def async_handler(request):
        return httpx2.Response(200, text="async " + request.url.params["q"])

    router = MockRouter()
    router.add("GET", "/s", lambda request: httpx2.Response(200, text="sync"))
    router.add("GET", "/a", async_handler)
    assert run(send(router, "GET", "https://api.test/s")).text == "sync"
    assert run(send(router, "GET", "https://api.test/a?q=1")).text == "async 1"


def test_a_handler_returning_something_else_is_a_clear_error():
    router = MockRouter()
    router.add("GET", "/x", lambda request: {"not": "a response"})
    with pytest.raises(TypeError, match=re.escape("must return an httpx2.Response")):
        run(send(router, "GET", "https://api.test/x"))


def test_a_route_without_response_answers_empty_200():
    router = MockRouter()
    router.add("GET", "/x")
    resp = run(send(router, "GET", "https://api.test/x"))
    assert (resp.status_code, resp.content) == (200, b"")


def test_respond_sequence_answers_in_order_then_fails_when_exhausted():
    router = MockRouter()
    route = router.get("/x").respond_sequence([503, {"ok": 1}, httpx2.Response(418)])

    async def main():
        async with httpx2.AsyncClient(transport=router.transport()) as client:
            got = [(await client.get("https://api.test/x")).status_code for _ in range(3)]
            with pytest.raises(RouteExhausted, match="called 4 times but has 3 responses"):
                await client.get("https://api.test/x")
            return got

    assert run(main()) == [503, 200, 418]
    assert route.call_count == 4


def test_respond_sequence_can_repeat_the_last_step():
    router = MockRouter()
    router.get("/x").respond_sequence([500, 200], repeat_last=True)

    async def main():
        async with httpx2.AsyncClient(transport=router.transport()) as client:
            return [(await client.get("https://api.test/x")).status_code for _ in range(4)]

    assert run(main()) == [500, 200, 200, 200]


def test_an_empty_sequence_is_rejected():
    with pytest.raises(ValueError, match="at least one step"):
        MockRouter().get("/x").respond_sequence([])


def test_a_response_object_can_be_served_many_times():
    router = MockRouter()
    router.add("GET", "/x", httpx2.Response(200, json={"v": 1}))

    async def main():
        async with httpx2.AsyncClient(transport=router.transport()) as client:
            return [(await client.get("https://api.test/x")).json() for _ in range(2)]

    assert run(main()) == [{"v": 1}, {"v": 1}]


def test_respond_replaces_the_steps():
    router = MockRouter()
    router.get("/x", status=500).respond(201, json={"id": 7})
    assert run(send(router, "GET", "https://api.test/x")).json() == {"id": 7}


@pytest.mark.parametrize(
    "error", [httpx2.ConnectError, httpx2.RemoteProtocolError, httpx2.ReadTimeout]
)
def test_raises_simulates_transport_failures_by_class(error):
    router = MockRouter()
    router.post("/x").raises(error)
    with pytest.raises(error, match=f"simulated {error.__name__}"):
        run(send(router, "POST", "https://api.test/x"))


def test_raises_accepts_an_exception_instance():
    router = MockRouter()
    router.get("/x").raises(httpx2.ReadError("reset by peer"))
    with pytest.raises(httpx2.ReadError, match="reset by peer"):
        run(send(router, "GET", "https://api.test/x"))


def test_raises_non_httpx_exception_classes_too():
    router = MockRouter()
    router.get("/x").raises(RuntimeError)
    with pytest.raises(RuntimeError):
        run(send(router, "GET", "https://api.test/x"))


def test_a_bool_is_not_a_status_code():
    router = MockRouter()
    router.add("GET", "/x", True)
    with pytest.raises(TypeError, match="bool"):
        run(send(router, "GET", "https://api.test/x"))


def test_calls_record_method_url_headers_and_body():
    router = MockRouter()
    router.post("/items")
    run(
        send(
            router,
            "POST",
            "https://api.test/items?dry=1",
            json={"name": "x"},
            headers={"X-Trace": "t1"},
        )
    )
    (call,) = router.calls
    assert call.method == "POST"
    assert call.path == "/items"
    assert call.url.params["dry"] == "1"
    assert call.headers["x-trace"] == "t1"
    assert call.json() == {"name": "x"}
    assert call.text() == '{"name":"x"}'


def test_recorded_headers_are_a_snapshot():
    router = MockRouter()
    router.get("/x")

    async def main():
        async with httpx2.AsyncClient(transport=router.transport()) as client:
            request = client.build_request("GET", "https://api.test/x", headers={"A": "1"})
            await client.send(request)
            request.headers["A"] = "2"
            await client.send(request)

    run(main())
    assert [c.headers["a"] for c in router.calls] == ["1", "2"]


def test_unmatched_requests_are_recorded_and_list_known_routes():
    router = MockRouter()
    router.get("/known")
    with pytest.raises(UnmatchedRequest, match="routes: GET /known"):
        run(send(router, "DELETE", "https://api.test/unknown"))
    assert [c.path for c in router.calls] == ["/unknown"]


def test_assert_all_called_names_the_routes_never_called():
    router = MockRouter()
    router.get("/used")
    router.post(re.compile(r"/never/\d+"))
    run(send(router, "GET", "https://api.test/used"))
    with pytest.raises(AssertionError, match=r"routes never called: POST /never/\\d\+"):
        router.assert_all_called()


def test_assert_all_called_passes_when_every_route_was_used():
    router = MockRouter()
    router.get("/a")
    run(send(router, "GET", "https://api.test/a"))
    router.assert_all_called()


def test_reset_forgets_calls_and_restarts_sequences():
    router = MockRouter()
    route = router.get("/x").respond_sequence([500, 200])
    run(send(router, "GET", "https://api.test/x"))
    router.reset()
    assert router.calls == []
    assert not route.called
    assert run(send(router, "GET", "https://api.test/x")).status_code == 500
    assert router.routes == (route,)


def test_asgi_transport_serves_an_app_in_process():
    async def app(scope, receive, send):
        assert scope["type"] == "http"
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    async def main():
        transport = asgi_transport(app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://emulator") as c:
            return (await c.get("/services/data")).text

    assert run(main()) == "/services/data"


def test_asgi_transport_can_turn_app_errors_into_500s():
    async def app(scope, receive, send):
        raise RuntimeError("emulator bug")

    async def main():
        transport = asgi_transport(app, raise_app_exceptions=False)
        async with httpx2.AsyncClient(transport=transport, base_url="http://emulator") as c:
            return (await c.get("/")).status_code

    assert run(main()) == 500

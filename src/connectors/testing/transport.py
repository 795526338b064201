"""Mock-transport helpers, so adapter tests need no network.

::

    router = MockRouter(base_url="https://api.example.com")
    router.get("/v1/users", json=[{"id": 1}])
    router.post("/v1/users").respond_sequence([503, 503, {"id": 2}])
    router.get("/v1/flaky").raises(httpx2.ConnectError)
    client = ConnectorHttpClient("demo", base_url=..., pipeline=..., transport=router.transport())
    ...
    router.assert_all_called()
    assert router.calls[0].json() == ...

A route matches a method and a path (exact, or a compiled regex matched in full); when a path
starts with ``http`` it is matched against the whole URL without the query. Routes are tried
in the order they were added. A request no route matches fails the test with
:class:`UnmatchedRequest` (an ``AssertionError``), which the connector client does not translate
or retry. The router is meant for async clients (``httpx2.AsyncClient``, the connector client).
"""

from __future__ import annotations

import inspect
import json as _json
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

import httpx2

__all__ = [
    "Handler",
    "MockRouter",
    "RecordedCall",
    "ResponseSpec",
    "Route",
    "RouteExhausted",
    "UnmatchedRequest",
    "asgi_transport",
]

Handler = Callable[[httpx2.Request], "httpx2.Response | Awaitable[httpx2.Response]"]
"""A function from request to response (sync or async)."""

ResponseSpec = (
    httpx2.Response
    | int
    | Mapping[str, object]
    | list[object]
    | BaseException
    | type[BaseException]
    | Handler
)
"""One step of a route: a response, a status code, a JSON body (status 200), an exception
(instance or class) to raise as if the connection failed, or a handler."""


class UnmatchedRequest(AssertionError):
    """No route matches the request."""


class RouteExhausted(AssertionError):
    """A route with a response sequence was called more times than it has responses."""


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """A request the router saw (body already read)."""

    method: str
    url: httpx2.URL
    headers: httpx2.Headers
    content: bytes

    @property
    def path(self) -> str:
        return self.url.path

    def json(self) -> object:
        """The body parsed as JSON."""
        return _json.loads(self.content)

    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")


@dataclass(slots=True, eq=False)
class Route:
    """One method + path, and what it answers."""

    method: str
    pattern: str | re.Pattern[str]
    steps: list[ResponseSpec]
    repeat_last: bool = True
    calls: list[RecordedCall] = field(default_factory=list)

    def matches(self, request: httpx2.Request) -> bool:
        if self.method != "*" and request.method != self.method:
            return False
        pattern = self.pattern
        if isinstance(pattern, re.Pattern):
            return pattern.fullmatch(request.url.path) is not None
        if pattern.startswith(("http://", "https://")):
            return str(request.url.copy_with(query=None)) == pattern
        return request.url.path == pattern

    @property
    def called(self) -> bool:
        return bool(self.calls)

    @property
    def call_count(self) -> int:
        return len(self.calls)

    def respond(
        self,
        status: int = 200,
        *,
        json: object = None,
        text: str | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Route:
        """Answer every call with one response (replaces earlier steps)."""
        self.steps = [_response(status, json=json, text=text, content=content, headers=headers)]
        self.repeat_last = True
        return self

    def respond_sequence(
        self, steps: Iterable[ResponseSpec], *, repeat_last: bool = False
    ) -> Route:
        """Answer successive calls with ``steps`` in order (``[503, 503, 200]``).

        Past the end, the route raises :class:`RouteExhausted` unless ``repeat_last``.
        """
        self.steps = list(steps)
        if not self.steps:
            raise ValueError("respond_sequence needs at least one step")
        self.repeat_last = repeat_last
        return self

    def raises(self, error: BaseException | type[BaseException]) -> Route:
        """Raise ``error`` on every call (an ``httpx2.ConnectError`` simulates a refused
        connection, ``httpx2.RemoteProtocolError`` one dropped mid-response)."""
        self.steps = [error]
        self.repeat_last = True
        return self

    async def _handle(self, request: httpx2.Request) -> httpx2.Response:
        index = len(self.calls)
        self.calls.append(_record(request))
        if index >= len(self.steps):
            if not self.repeat_last:
                raise RouteExhausted(
                    f"{self.method} {_show(self.pattern)} was called {index + 1} times "
                    f"but has {len(self.steps)} responses"
                )
            index = len(self.steps) - 1
        return await _materialise(self.steps[index], request)


class MockRouter:
    """Routes requests of an ``httpx2.MockTransport`` to canned responses and records them."""

    def __init__(self, *, base_url: str | None = None) -> None:
        self._routes: list[Route] = []
        self._prefix = httpx2.URL(base_url).path.rstrip("/") if base_url else ""
        self.calls: list[RecordedCall] = []

    @property
    def routes(self) -> Sequence[Route]:
        return tuple(self._routes)

    def add(
        self,
        method: str,
        path: str | re.Pattern[str],
        response: ResponseSpec | None = None,
    ) -> Route:
        """Register a route; ``method`` ``"*"`` matches any method. Without ``response`` it
        answers ``200`` with an empty body until told otherwise."""
        if isinstance(path, str) and not path.startswith(("http://", "https://")):
            path = self._prefix + ("" if path.startswith("/") else "/") + path
        route = Route(
            method.upper(), path, [httpx2.Response(200) if response is None else response]
        )
        self._routes.append(route)
        return route

    def _shortcut(
        self,
        method: str,
        path: str | re.Pattern[str],
        status: int,
        json: object,
        text: str | None,
        content: bytes | None,
        headers: Mapping[str, str] | None,
    ) -> Route:
        spec = _response(status, json=json, text=text, content=content, headers=headers)
        return self.add(method, path, spec)

    def get(
        self,
        path: str | re.Pattern[str],
        *,
        status: int = 200,
        json: object = None,
        text: str | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Route:
        """Route ``GET path`` to a response (JSON, text or bytes body)."""
        return self._shortcut("GET", path, status, json, text, content, headers)

    def post(
        self,
        path: str | re.Pattern[str],
        *,
        status: int = 200,
        json: object = None,
        text: str | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Route:
        """Route ``POST path`` to a response."""
        return self._shortcut("POST", path, status, json, text, content, headers)

    def put(
        self,
        path: str | re.Pattern[str],
        *,
        status: int = 200,
        json: object = None,
        text: str | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Route:
        """Route ``PUT path`` to a response."""
        return self._shortcut("PUT", path, status, json, text, content, headers)

    def patch(
        self,
        path: str | re.Pattern[str],
        *,
        status: int = 200,
        json: object = None,
        text: str | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Route:
        """Route ``PATCH path`` to a response."""
        return self._shortcut("PATCH", path, status, json, text, content, headers)

    def delete(
        self,
        path: str | re.Pattern[str],
        *,
        status: int = 204,
        json: object = None,
        text: str | None = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Route:
        """Route ``DELETE path`` to a response (``204`` by default)."""
        return self._shortcut("DELETE", path, status, json, text, content, headers)

    async def handle(self, request: httpx2.Request) -> httpx2.Response:
        """The transport handler: dispatch ``request`` to the first matching route."""
        await request.aread()
        self.calls.append(_record(request))
        for route in self._routes:
            if route.matches(request):
                return await route._handle(request)
        known = ", ".join(f"{r.method} {_show(r.pattern)}" for r in self._routes) or "(none)"
        raise UnmatchedRequest(f"no route for {request.method} {request.url}; routes: {known}")

    def transport(self) -> httpx2.MockTransport:
        """An ``httpx2.MockTransport`` served by this router."""
        return httpx2.MockTransport(self.handle)

    def assert_all_called(self) -> None:
        """Fail if a route was never called (a test set up a call the code did not make)."""
        missing = [f"{r.method} {_show(r.pattern)}" for r in self._routes if not r.calls]
        if missing:
            raise AssertionError("routes never called: " + ", ".join(missing))

    def reset(self) -> None:
        """Forget recorded calls (routes stay; sequences restart)."""
        self.calls.clear()
        for route in self._routes:
            route.calls.clear()


def asgi_transport(
    app: Callable[..., Awaitable[None]],
    *,
    raise_app_exceptions: bool = True,
    root_path: str = "",
) -> httpx2.ASGITransport:
    """An ``httpx2.ASGITransport`` serving ``app`` in process (for the emulators)."""
    return httpx2.ASGITransport(
        app=app, raise_app_exceptions=raise_app_exceptions, root_path=root_path
    )


def _response(
    status: int,
    *,
    json: object = None,
    text: str | None = None,
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx2.Response:
    given = sum(x is not None for x in (json, text, content))
    if given > 1:
        raise ValueError("give at most one of json, text and content")
    if json is not None:
        return httpx2.Response(status, json=json, headers=headers)
    if text is not None:
        return httpx2.Response(status, text=text, headers=headers)
    return httpx2.Response(status, content=content or b"", headers=headers)


async def _materialise(spec: ResponseSpec, request: httpx2.Request) -> httpx2.Response:
    """A fresh response for one call (a Response object cannot be handed out twice)."""
    if isinstance(spec, httpx2.Response):
        return httpx2.Response(
            spec.status_code,
            headers=spec.headers,
            content=spec.content,
            extensions=spec.extensions,
        )
    if isinstance(spec, bool):
        raise TypeError("a response step cannot be a bool")
    if isinstance(spec, int):
        return httpx2.Response(spec)
    if isinstance(spec, BaseException):
        raise spec
    if isinstance(spec, type) and issubclass(spec, BaseException):
        if issubclass(spec, httpx2.RequestError):
            raise spec(f"simulated {spec.__name__}", request=request)
        raise spec()
    if isinstance(spec, Mapping | list):
        return httpx2.Response(200, json=spec)
    handler = cast(Handler, spec)  # the only remaining case
    result = handler(request)
    if inspect.isawaitable(result):
        result = await result
    if not isinstance(result, httpx2.Response):
        raise TypeError(f"a route handler must return an httpx2.Response, not {type(result)!r}")
    return result


def _record(request: httpx2.Request) -> RecordedCall:
    # Copy the headers: a retried request object may be mutated later (auth flows).
    return RecordedCall(
        request.method, request.url, httpx2.Headers(request.headers), request.content
    )


def _show(pattern: str | re.Pattern[str]) -> str:
    return pattern.pattern if isinstance(pattern, re.Pattern) else pattern

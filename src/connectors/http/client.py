"""The connector HTTP client: one pooled ``httpx2.AsyncClient`` per connector instance.

Every request runs through the resilience pipeline, one ``httpx2`` send per attempt::

    pipeline.execute(deadline › retry › breaker › rate limit › bulkhead)
        └── attempt: request.extensions["timeout"] = attempt.timeout  → auth flow → httpx2
                     response/exception → ResponseClassifier → typed error or response

The attempt timeout is handed to httpx2 as its connect/read/write/pool timeout, so the hot path
needs no ``asyncio.timeout``. httpx2 applies it per phase (the connect, each socket read or
write, the pool wait), so a server trickling bytes can stretch one attempt past it; the pipeline
still checks the deadline before every attempt and every wait.

A classified error closes the response and is raised with the connector, tenant, operation and
request id filled in; the pipeline decides on a retry from the error's type, ``request_sent``
and ``retry_after``.

Seams: ``transport`` (a ``MockTransport`` or ``ASGITransport`` for tests) or ``transport_factory``
(how an SSRF-pinning transport plugs in), ``classifier`` (per client and per request),
``auth`` (an ``httpx2.Auth`` flow from ``connectors.auth``) and ``observer`` (metrics).
"""

from __future__ import annotations

import functools
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager, suppress
from types import TracebackType
from typing import TYPE_CHECKING, Final, Protocol, Self, TypedDict, TypeVar

import httpx2
from typing_extensions import Unpack

from connectors.auth.static import request_editor
from connectors.clock import Clock, system_clock
from connectors.context import CallContext
from connectors.errors import ConnectorError
from connectors.http.build import ClientHeaders, quick_request
from connectors.http.classify import ResponseClassifier
from connectors.http.send import direct_send_applies, send
from connectors.http.transport import default_transport
from connectors.resilience import Attempt, Pipeline, RateLimit

if TYPE_CHECKING:
    from httpx2._types import QueryParamTypes, RequestContent, RequestData, RequestFiles

__all__ = [
    "DEFAULT_LIMITS",
    "IDEMPOTENT_METHODS",
    "AttemptPipeline",
    "ConnectorHttpClient",
    "HttpObserver",
    "RequestOptions",
    "TransportFactory",
    "user_agent",
]

T = TypeVar("T")

#: Methods that are idempotent by RFC 9110 and retried freely unless told otherwise.
IDEMPOTENT_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
#: Pool limits for one connector instance.
DEFAULT_LIMITS: Final = httpx2.Limits(
    max_connections=100, max_keepalive_connections=20, keepalive_expiry=30.0
)

_STATUS_CLASSES: Final = ("1xx", "2xx", "3xx", "4xx", "5xx")
#: Bound on the merged-URL cache of one client (cleared when full; rebuilt on demand).
_URL_CACHE_LIMIT: Final = 1024
#: Longer URLs (a query string with a long SOQL, say) are rarely repeated: not cached.
_URL_CACHE_MAX_LENGTH: Final = 2048


class AttemptPipeline(Protocol):
    """The part of :class:`connectors.resilience.Pipeline` the client uses (a fake in a test
    may stand in for it)."""

    async def execute(
        self,
        fn: Callable[[Attempt], Awaitable[T]],
        *,
        ctx: CallContext,
        operation: str,
        idempotent: bool,
        rate_limits: Sequence[RateLimit] = (),
        breaker_key: str | None = None,
        enforce_timeout: bool = True,
    ) -> T: ...


if TYPE_CHECKING:

    def _pipeline_conforms(pipeline: Pipeline) -> AttemptPipeline:
        return pipeline  # mypy fails here if Pipeline.execute drifts from the protocol


class HttpObserver(Protocol):
    """Told about every HTTP attempt (how ``connector_http_requests_total`` is counted).

    Any callable with this signature (a function, a bound method) is an observer.
    ``status_class`` is ``"2xx"``…``"5xx"`` for an answer, or the snake-case name of the
    transport error (``"timeout"``, ``"connection_failed"``, ``"ambiguous_outcome"``...).
    ``duration`` is in seconds. Called on the hot path: keep it cheap and never raise.
    """

    def __call__(
        self, connector: str, tenant: str, operation: str, status_class: str, duration: float
    ) -> None: ...


class TransportFactory(Protocol):
    """Builds the client's transport (the seam an SSRF-pinning transport plugs into)."""

    def __call__(self, *, limits: httpx2.Limits, http2: bool) -> httpx2.AsyncBaseTransport: ...


class RequestOptions(TypedDict, total=False):
    """Keyword options shared by :meth:`ConnectorHttpClient.request` and its shortcuts."""

    idempotent: bool | None
    rate_limits: Sequence[RateLimit]
    breaker_key: str | None
    params: QueryParamTypes | None
    json: object
    content: RequestContent | None
    data: RequestData | None
    files: RequestFiles | None
    headers: Mapping[str, str] | None
    classifier: ResponseClassifier | None


class ConnectorHttpClient:
    """A pooled async HTTP client for one connector instance, resilient per attempt.

    Create one per connector instance and close it (``aclose`` or ``async with``) when the
    instance closes; requests of every tenant-bound call share its connection pool.
    """

    def __init__(
        self,
        connector: str,
        *,
        pipeline: AttemptPipeline,
        base_url: str = "",
        classifier: ResponseClassifier | None = None,
        auth: httpx2.Auth | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        transport_factory: TransportFactory | None = None,
        headers: Mapping[str, str] | None = None,
        limits: httpx2.Limits = DEFAULT_LIMITS,
        http2: bool = False,
        follow_redirects: bool = False,
        clock: Clock | None = None,
        observer: HttpObserver | None = None,
    ) -> None:
        if transport is not None and transport_factory is not None:
            raise ValueError("pass either transport or transport_factory, not both")
        if transport_factory is not None:
            transport = transport_factory(limits=limits, http2=http2)
        elif transport is None:
            transport = default_transport(limits=limits, http2=http2)
        # With a transport of our own choosing and no redirects to follow, requests skip
        # AsyncClient.send's layers (connectors.http.send); otherwise httpx2 sends them.
        self._transport = None if follow_redirects else transport
        self._auth = auth
        self._edit = request_editor(auth)
        self._defaults = ClientHeaders()
        self.connector = connector
        self._pipeline = pipeline
        self._clock = clock or system_clock
        self._classifier = classifier or ResponseClassifier(clock=self._clock)
        self._observer = observer
        self._client = httpx2.AsyncClient(
            base_url=base_url,
            auth=auth,
            headers={"User-Agent": user_agent(), **(headers or {})},
            limits=limits,
            http2=http2,
            transport=transport,
            follow_redirects=follow_redirects,
        )
        # url string -> the absolute URL httpx2 would merge it into (see ``_merged_url``).
        self._urls: dict[str, httpx2.URL] = {}
        self._urls_base: httpx2.URL = self._client.base_url

    @property
    def classifier(self) -> ResponseClassifier:
        """The default classifier (a request may pass its own)."""
        return self._classifier

    @property
    def base_url(self) -> httpx2.URL:
        return self._client.base_url

    def _merged_url(self, url: str) -> httpx2.URL | str:
        """The absolute URL for ``url`` (merged with the base URL), parsed once per string.

        httpx2 parses the string and re-parses the merge on every ``build_request`` (~20 µs);
        the result depends only on the string and the base URL, and ``httpx2.URL`` is
        immutable, so it is cached per client. Handing httpx2 an absolute ``URL`` makes its
        own merge a no-op. The cache is dropped if the base URL changes; relative results
        (no base URL) and over-long strings are not cached. Raises ``httpx2.InvalidURL`` as
        httpx2 would.
        """
        client = self._client
        base = client.base_url
        if base is not self._urls_base:
            self._urls.clear()
            self._urls_base = base
        found = self._urls.get(url)
        if found is not None:
            return found
        merged = client._merge_url(url)
        if merged.is_relative_url or len(url) > _URL_CACHE_MAX_LENGTH:
            return url
        if len(self._urls) >= _URL_CACHE_LIMIT:
            self._urls.clear()
        self._urls[url] = merged
        return merged

    async def request(
        self,
        method: str,
        url: str,
        *,
        ctx: CallContext,
        operation: str,
        idempotent: bool | None = None,
        rate_limits: Sequence[RateLimit] = (),
        breaker_key: str | None = None,
        params: QueryParamTypes | None = None,
        json: object = None,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        headers: Mapping[str, str] | None = None,
        classifier: ResponseClassifier | None = None,
        stream: bool = False,
    ) -> httpx2.Response:
        """Send one logical request through the pipeline; return the successful response.

        ``idempotent`` defaults from the method (GET, HEAD, OPTIONS, PUT, DELETE, TRACE are;
        POST and PATCH are not) and decides whether an ambiguous failure may be retried. The
        body is read, unless ``stream`` is true: then the response is open and the caller must
        close it (prefer :meth:`stream`). Raises a :class:`~connectors.errors.ConnectorError`
        subclass carrying connector, tenant, operation and request id.
        """
        method = method.upper()
        if idempotent is None:
            idempotent = method in IDEMPOTENT_METHODS
        request_id = ctx.request_id
        bodiless = json is None and content is None and data is None and files is None
        merged: dict[str, str] | None
        if headers:
            merged = {**headers, "X-Request-Id": request_id}
        elif bodiless:
            # Set on the built request instead: the same header list (no body headers follow
            # it), without httpx2 copying and re-normalising every header to merge one (~3 µs).
            merged = None
        else:
            merged = {"X-Request-Id": request_id}

        target: httpx2.URL | str = url
        simple = params is None and json is None and files is None

        def build() -> httpx2.Request:
            if simple and type(target) is httpx2.URL:
                quick = quick_request(
                    self._client,
                    method,
                    target,
                    content=content,
                    data=data,
                    headers=headers,
                    request_id=request_id,
                    defaults=self._defaults,
                )
                if quick is not None:
                    return quick
            request = self._client.build_request(
                method,
                target,
                params=params,
                json=json,
                content=content,
                data=data,
                files=files,
                headers=merged,
                # A placeholder keeps httpx2 from building a Timeout; each attempt sets its own.
                extensions={"timeout": None},
            )
            if merged is None:
                request.headers["X-Request-Id"] = request_id
            return request

        unsent: list[httpx2.Request] = []
        try:
            parsed = False
            if type(url) is str:
                target = self._merged_url(url)
                parsed = type(target) is not str
            # Errors in the caller's input (a malformed URL, a body that cannot be encoded, a
            # bad header) must surface before any policy runs, so the request is built up front
            # -- unless the only input is a URL already parsed and merged above: then nothing
            # can fail, and an open circuit or a refused wait skips the build (~15 µs).
            if not parsed or headers or params is not None or not bodiless:
                unsent.append(build())
        except httpx2.InvalidURL as exc:
            raise self._failure(exc, self._classifier, ctx, operation) from exc
        chosen = classifier or self._classifier

        def attempt(att: Attempt) -> Awaitable[httpx2.Response]:
            # A retry gets a fresh request: auth flows and transports may have mutated the
            # first one (headers, consumed streams). Not a coroutine itself: one frame less.
            request = unsent.pop() if unsent else build()
            return self._attempt(request, att, chosen, ctx, operation, stream)

        try:
            return await self._pipeline.execute(
                attempt,
                ctx=ctx,
                operation=operation,
                idempotent=idempotent,
                rate_limits=rate_limits,
                breaker_key=breaker_key,
                enforce_timeout=False,
            )
        except ConnectorError as exc:
            # Errors the pipeline raises itself (CircuitOpen, DeadlineExceeded...) get context too.
            exc.with_context(
                connector=self.connector,
                tenant=ctx.tenant,
                operation=operation,
                request_id=ctx.request_id,
            )
            raise

    async def _attempt(
        self,
        request: httpx2.Request,
        attempt: Attempt,
        classifier: ResponseClassifier,
        ctx: CallContext,
        operation: str,
        stream: bool,
    ) -> httpx2.Response:
        timeout = attempt.timeout
        limit = None if timeout == math.inf else timeout
        request.extensions["timeout"] = {
            "connect": limit,
            "read": limit,
            "write": limit,
            "pool": limit,
        }
        observer = self._observer
        started = self._clock.monotonic() if observer is not None else 0.0
        try:
            transport = self._transport
            if transport is not None and direct_send_applies(request):
                if self._client.is_closed:
                    raise RuntimeError("Cannot send a request, as the client has been closed.")
                response = await send(
                    transport,
                    request,
                    auth=self._auth,
                    cookies=self._client.cookies,
                    stream=stream,
                    edit=self._edit,
                )
            else:
                response = await self._client.send(request, stream=stream)
        except Exception as exc:
            error = classifier.classify_exception(exc)
            if error is None:
                raise
            if observer is not None:
                observer(
                    self.connector,
                    ctx.tenant,
                    operation,
                    _error_class(error),
                    self._clock.monotonic() - started,
                )
            raise error.with_context(
                connector=self.connector,
                tenant=ctx.tenant,
                operation=operation,
                request_id=ctx.request_id,
            ) from exc
        if observer is not None:
            status = response.status_code
            observer(
                self.connector,
                ctx.tenant,
                operation,
                _STATUS_CLASSES[status // 100 - 1] if 100 <= status < 600 else "other",
                self._clock.monotonic() - started,
            )
        if stream and response.status_code >= 400:
            await _read_quietly(response)
        error = classifier.classify(response)
        if error is None:
            return response
        await response.aclose()
        raise error.with_context(
            connector=self.connector,
            tenant=ctx.tenant,
            operation=operation,
            request_id=ctx.request_id,
        )

    def _failure(
        self, exc: Exception, classifier: ResponseClassifier, ctx: CallContext, operation: str
    ) -> ConnectorError:
        error = classifier.classify_exception(exc)
        if error is None:  # pragma: no cover - classify_exception maps InvalidURL
            raise exc
        return error.with_context(
            connector=self.connector,
            tenant=ctx.tenant,
            operation=operation,
            request_id=ctx.request_id,
        )

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: str,
        *,
        ctx: CallContext,
        operation: str,
        **options: Unpack[RequestOptions],
    ) -> AsyncIterator[httpx2.Response]:
        """``async with client.stream("GET", url, ...) as response:`` — an open, unread
        response (after classification), closed when the block exits."""
        response = await self.request(
            method, url, ctx=ctx, operation=operation, stream=True, **options
        )
        try:
            yield response
        finally:
            await response.aclose()

    async def get(
        self, url: str, *, ctx: CallContext, operation: str, **options: Unpack[RequestOptions]
    ) -> httpx2.Response:
        """``request("GET", ...)``."""
        return await self.request("GET", url, ctx=ctx, operation=operation, **options)

    async def post(
        self, url: str, *, ctx: CallContext, operation: str, **options: Unpack[RequestOptions]
    ) -> httpx2.Response:
        """``request("POST", ...)`` (not idempotent unless ``idempotent=True``)."""
        return await self.request("POST", url, ctx=ctx, operation=operation, **options)

    async def put(
        self, url: str, *, ctx: CallContext, operation: str, **options: Unpack[RequestOptions]
    ) -> httpx2.Response:
        """``request("PUT", ...)``."""
        return await self.request("PUT", url, ctx=ctx, operation=operation, **options)

    async def patch(
        self, url: str, *, ctx: CallContext, operation: str, **options: Unpack[RequestOptions]
    ) -> httpx2.Response:
        """``request("PATCH", ...)`` (not idempotent unless ``idempotent=True``)."""
        return await self.request("PATCH", url, ctx=ctx, operation=operation, **options)

    async def delete(
        self, url: str, *, ctx: CallContext, operation: str, **options: Unpack[RequestOptions]
    ) -> httpx2.Response:
        """``request("DELETE", ...)``."""
        return await self.request("DELETE", url, ctx=ctx, operation=operation, **options)

    async def aclose(self) -> None:
        """Close the pool (and the transport). Idempotent."""
        await self._client.aclose()

    @property
    def is_closed(self) -> bool:
        return self._client.is_closed

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"ConnectorHttpClient(connector={self.connector!r}, base_url={str(self.base_url)!r})"


@functools.cache
def user_agent() -> str:
    """``connectors/<version>``, sent on every request unless the connector overrides it."""
    # Imported here, not at module level: the package imports this module while initialising.
    from connectors import __version__

    return f"connectors/{__version__}"


async def _read_quietly(response: httpx2.Response) -> None:
    """Read an error body for the excerpt; a failure only costs the excerpt."""
    with suppress(httpx2.HTTPError):
        await response.aread()


def _error_class(error: ConnectorError) -> str:
    name = type(error).__name__
    return "".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_")

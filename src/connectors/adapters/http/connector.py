"""The declarative REST connector: a ``Connector`` whose operations come from a definition.

``type: http`` definitions describe their ``api`` (operations, pagination, error rules, quota
headers, network allowlist). The registered :class:`HttpConnector` is generic; constructing it
with a runtime whose settings carry an ``api`` block returns an instance of a *dedicated
subclass* built once per API description, with one real ``@operation`` per declared operation.
So every declared operation is checked (access, scopes), metered, logged and audited under its
own name with its own idempotency and scopes, exactly like a hand-written adapter's, and
``base.py`` needs no special case::

    async with hub.open("github", tenant_id="acme") as gh:
        issues = await gh.call("list_issues", owner="acme", repo="app", state="open")
        async for issue in gh.stream("list_issues", owner="acme", repo="app"):
            ...

``call`` returns the selected result (every page's items for a paginated operation); ``stream``
yields items page by page. Declared operations are also plain methods (``gh.list_issues(...)``),
which the sync face and workflows use.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from typing import Any, ClassVar, Final
from urllib.parse import urlsplit

import httpx2

from connectors.adapters.http.arguments import (
    bind,
    render_body,
    render_headers,
    render_path,
    render_query,
)
from connectors.adapters.http.auth import build_auth
from connectors.adapters.http.pagination import Pager, PageView, pager_for
from connectors.adapters.http.rules import error_rule, provider_code_hook, read_quota
from connectors.adapters.http.selector import Selector
from connectors.base import Connector, ConnectorRuntime, operation
from connectors.config.definition import HttpApi, HttpOperation
from connectors.errors import ConfigurationError, InvalidRequest, PermanentError
from connectors.http import ConnectorHttpClient, ResponseClassifier
from connectors.http.pinned import pinned_transport_factory
from connectors.http.ssrf import SsrfGuard, SsrfPolicy
from connectors.observability.redaction import redact_text
from connectors.resilience import RateLimit
from connectors.secrets import Secret

__all__ = ["HttpConnector", "connector_class_for"]

_STREAM_PREFIX: Final = "_stream__"
#: A limiter key the provider's quota headers can close (never limiting on its own).
_QUOTA_RATE: Final = 1_000_000.0

_classes: dict[str, type[HttpConnector]] = {}
_classes_lock = threading.Lock()


def _api_of(settings: Mapping[str, object]) -> HttpApi:
    raw = settings.get("api")
    if isinstance(raw, HttpApi):
        return raw
    if not isinstance(raw, Mapping):
        raise ConfigurationError(
            "a declarative REST connector needs an `api` block",
            hint="describe its operations under `api: operations:` (see docs/templates.md)",
        )
    return HttpApi.model_validate(raw)


def connector_class_for(api: HttpApi) -> type[HttpConnector]:
    """The dedicated subclass for ``api`` (built once per distinct API description)."""
    digest = hashlib.sha256(api.model_dump_json().encode()).hexdigest()[:16]
    found = _classes.get(digest)
    if found is not None:
        return found
    with _classes_lock:
        found = _classes.get(digest)
        if found is None:
            namespace: dict[str, object] = {"_api": api, "__doc__": HttpConnector.__doc__}
            for op_name, op in api.operations.items():
                declare = operation(
                    idempotent=op.is_idempotent,
                    scopes=tuple(op.scopes),
                    name=op_name,
                    audit_target=_audit_target(op),
                )
                namespace[op_name] = declare(_call_method(op_name))
                namespace[_STREAM_PREFIX + op_name] = declare(_stream_method(op_name))
            found = type(f"HttpConnector_{digest}", (HttpConnector,), namespace)
            _classes[digest] = found
    return found


def _audit_target(op: HttpOperation) -> Callable[..., str | None]:
    def target(arguments: Mapping[str, object]) -> str | None:
        if any(isinstance(v, Secret) for v in arguments.values()):
            return f"{op.method} {op.path}"
        try:
            return f"{op.method} {render_path(op.path, bind('', op, arguments))}"
        except (InvalidRequest, KeyError):
            return f"{op.method} {op.path}"

    return target


def _call_method(op_name: str) -> Callable[..., Coroutine[Any, Any, object]]:
    async def call_operation(self: HttpConnector, **arguments: object) -> object:
        return await self._run(op_name, arguments)

    call_operation.__name__ = call_operation.__qualname__ = op_name
    return call_operation


def _stream_method(op_name: str) -> Callable[..., AsyncIterator[object]]:
    async def stream_operation(self: HttpConnector, **arguments: object) -> AsyncIterator[object]:
        async for item in self._items(op_name, arguments):
            yield item

    stream_operation.__name__ = stream_operation.__qualname__ = _STREAM_PREFIX + op_name
    return stream_operation


class HttpConnector(Connector):
    """Declarative REST connector: operations, pagination and errors from a YAML definition."""

    name = "http"
    version = "1.0.0"

    _api: ClassVar[HttpApi | None] = None

    def __new__(cls, runtime: ConnectorRuntime) -> HttpConnector:
        chosen = cls if cls._api is not None else connector_class_for(_api_of(runtime.settings))
        return object.__new__(chosen)

    def __init__(self, runtime: ConnectorRuntime) -> None:
        super().__init__(runtime)
        self._classifiers: dict[str, ResponseClassifier] = {}
        self._token_client: httpx2.AsyncClient | None = None
        self._auth: httpx2.Auth | None = None
        self._guard: SsrfGuard | None = None
        api = self.api
        self._quota_limit = RateLimit(
            key=f"quota:{api.quota.name}", rate=_QUOTA_RATE, burst=_QUOTA_RATE
        )

    @property
    def api(self) -> HttpApi:
        """The API description this connector was built from."""
        api = type(self)._api
        if api is None:  # pragma: no cover - __new__ always picks a dedicated class
            raise ConfigurationError("HttpConnector used without an api", connector=self.name)
        return api

    # --- dispatch ---------------------------------------------------------------------------------

    def _declared(self, op_name: str) -> HttpOperation:
        op = self.api.operations.get(op_name)
        if op is None:
            import difflib

            known = sorted(self.api.operations)
            close = difflib.get_close_matches(op_name, known, n=1)
            raise ConfigurationError(
                f"{self.instance_name} has no operation {op_name!r}",
                connector=self.instance_name,
                hint=f"did you mean {close[0]!r}?" if close else f"operations: {', '.join(known)}",
            )
        return op

    async def call(self, operation_name: str, /, **arguments: object) -> object:
        """Run a declared operation; audited and metered under ``operation_name``."""
        self._declared(operation_name)
        method: Callable[..., Coroutine[Any, Any, object]] = getattr(self, operation_name)
        return await method(**arguments)

    async def stream(self, operation_name: str, /, **arguments: object) -> AsyncIterator[object]:
        """Yield a declared operation's items page by page (one audited operation)."""
        self._declared(operation_name)
        method: Callable[..., AsyncIterator[object]] = getattr(
            self, _STREAM_PREFIX + operation_name
        )
        async for item in method(**arguments):
            yield item

    # --- lifecycle --------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        value = self.runtime.settings.get("base_url")
        if not isinstance(value, str) or not value.startswith(("http://", "https://")):
            raise ConfigurationError(
                "a declarative REST connector needs settings.base_url (an http(s) URL)",
                connector=self.instance_name,
            )
        return value

    def _policy(self) -> SsrfPolicy:
        network = self.api.network
        nets = list(network.allow_nets)
        if network.allow_private_addresses:
            nets += ["0.0.0.0/0", "::/0"]
        return SsrfPolicy.allowing(nets, network.allow_hosts)

    async def on_connect(self) -> None:
        self._guard = SsrfGuard(self._policy())
        base = self.base_url
        host = urlsplit(base).hostname or ""
        if self.runtime.transport is None or _is_ip_literal(host):
            await self._guard.vet(base)  # resolves once; refuses private targets
        else:
            self._guard.check_url(base)  # an injected transport: syntax only, no DNS
        auth = self.runtime.settings.get("auth")
        if isinstance(auth, Mapping) and auth.get("kind") == "oauth2_client_credentials":
            self._token_client = httpx2.AsyncClient(
                transport=self.runtime.transport
                if self.runtime.transport is not None
                else pinned_transport_factory(self._guard)(limits=httpx2.Limits(), http2=False)
            )
        self._auth = build_auth(
            auth if isinstance(auth, Mapping) else None,
            connector=self.instance_name,
            tenant=self.tenant,
            clock=self.runtime.clock,
            tokens=self.runtime.token_manager() if self._token_client is not None else None,
            token_client=self._token_client,
        )

    async def on_disconnect(self) -> None:
        if self._token_client is not None:
            client, self._token_client = self._token_client, None
            await client.aclose()

    def create_http_client(self) -> ConnectorHttpClient:
        headers = render_headers(self.api.headers, {})
        guard = self._guard or SsrfGuard(self._policy())
        transport = self.runtime.transport
        return ConnectorHttpClient(
            self.instance_name,
            base_url=self.base_url,
            pipeline=self.runtime.pipeline,
            auth=self._auth,
            transport=transport,
            transport_factory=None if transport is not None else pinned_transport_factory(guard),
            headers=headers,
            clock=self.runtime.clock,
            observer=self._observe_http,
            classifier=ResponseClassifier(clock=self.runtime.clock, redact=redact_text),
        )

    # --- execution --------------------------------------------------------------------------------

    def _classifier(self, op_name: str, op: HttpOperation) -> ResponseClassifier:
        found = self._classifiers.get(op_name)
        if found is None:
            hook = provider_code_hook(self.api.error_code_path)
            found = ResponseClassifier(
                clock=self.runtime.clock,
                redact=redact_text,
                provider_code=hook,
                rules=(error_rule((*op.errors, *self.api.errors)),),
            )
            self._classifiers[op_name] = found
        return found

    async def _send(
        self,
        op_name: str,
        op: HttpOperation,
        args: Mapping[str, object],
        url: str | None,
        params: Mapping[str, object],
    ) -> httpx2.Response:
        if url is not None:
            self._same_origin(url)
        body = render_body(op.body, args) if op.body is not None else None
        response = await self.request(
            op.method,
            url if url is not None else render_path(op.path, args),
            params=None if url is not None else dict(params),
            json=body,
            headers=render_headers(op.headers, args),
            rate_limits=(self._quota_limit,),
            classifier=self._classifier(op_name, op),
        )
        await self._observe_quota(response)
        return response

    def _same_origin(self, url: str) -> None:
        base, target = urlsplit(self.base_url), urlsplit(url)
        if target.scheme and (target.scheme, target.netloc) != (base.scheme, base.netloc):
            raise PermanentError(
                f"the provider's next-page URL leaves {base.scheme}://{base.netloc}",
                connector=self.instance_name,
                hint="a paginated API may only link to pages on its own origin",
            )

    async def _observe_quota(self, response: httpx2.Response) -> None:
        quota = read_quota(response, self.api.quota, self.runtime.clock.time())
        if quota is None:
            return
        self.runtime.metrics.rate_limit_remaining(
            self.instance_name, self.tenant, self.api.quota.name, quota.remaining
        )
        if quota.remaining <= 0 and quota.reset_after:
            # Nothing more until the reset: the limiter holds every later attempt back.
            await self.runtime.pipeline.block_rate_limit(
                self.tenant, self._quota_limit.key, quota.reset_after
            )

    def _pager(self, op: HttpOperation) -> Pager | None:
        if op.pagination is not None:
            return pager_for(op.pagination)
        if op.paginate and op.method == "GET" and self.api.pagination is not None:
            return pager_for(self.api.pagination)
        return None

    async def _run(self, op_name: str, arguments: Mapping[str, object]) -> object:
        op = self._declared(op_name)
        if self._pager(op) is None:
            args = bind(op_name, op, arguments)
            response = await self._send(op_name, op, args, None, render_query(op.query, args))
            body = _decode(response)
            return Selector.parse(op.select).select(body) if op.select else body
        return [item async for item in self._items(op_name, arguments)]

    async def _items(self, op_name: str, arguments: Mapping[str, object]) -> AsyncIterator[object]:
        op = self._declared(op_name)
        args = bind(op_name, op, arguments)
        pager = self._pager(op)
        params = render_query(op.query, args)
        if pager is None:
            response = await self._send(op_name, op, args, None, params)
            for item in _page_items(op, _decode(response)):
                yield item
            return
        params = pager.first(params)
        url: str | None = None
        for _ in range(pager.max_pages):
            response = await self._send(op_name, op, args, url, params)
            body = _decode(response)
            items = _page_items(op, body)
            for item in items:
                yield item
            link = response.links.get("next", {}).get("url")
            following = pager.next(params, PageView(body, link, items))
            if following is None:
                return
            params, url = following.params, following.url


def _is_ip_literal(host: str) -> bool:
    import ipaddress

    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _decode(response: httpx2.Response) -> object:
    if not response.content:
        return None
    try:
        return json.loads(response.content)
    except ValueError:
        return response.text


def _page_items(op: HttpOperation, body: object) -> list[object]:
    selected = Selector.parse(op.select).select(body) if op.select else body
    if selected is None:
        return []
    return list(selected) if isinstance(selected, list) else [selected]

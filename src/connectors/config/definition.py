"""Connector definitions: the tenant-agnostic description of one configured connector.

A definition names its adapter (``type``, optionally pinned: ``salesforce@^1.2``), its own
``version``, the ``schema_version`` it is written in, ``auth``, adapter ``settings``,
``resilience`` overrides, ``rate_limits`` and ``scopes``; a declarative REST connector (``type:
http``) also describes its ``api``. The Hub merges, lowest to highest precedence: built-in
defaults, ``CONNECTOR_*`` environment, the definition, the tenant's overrides, and explicit
arguments.

What an adapter sees as its settings (:attr:`ConnectorDefinition.settings`) is the declared
``settings`` plus ``auth`` (under the key ``"auth"``) and ``api`` (under ``"api"``), so ``${...}``
references in ``auth`` are resolved per tenant at connect time exactly like every other setting.

These models validate the *current* schema (:data:`SCHEMA_VERSION`); files in older schemas are
migrated by :mod:`connectors.config.migrations` before validation, and located errors
(``file:line:col``) come from :mod:`connectors.config.loader`.
"""

from __future__ import annotations

import re
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connectors.config.semver import RANGE_FORMS, Version, VersionRange

__all__ = [
    "SCHEMA_VERSION",
    "ApiKeyAuthDefinition",
    "AuthDefinition",
    "BasicAuthDefinition",
    "BearerAuthDefinition",
    "BreakerOverrides",
    "BulkheadOverrides",
    "ConnectorDefinition",
    "CursorPagination",
    "ErrorRule",
    "HttpApi",
    "HttpOperation",
    "LinkPagination",
    "NetworkPolicy",
    "NextUrlPagination",
    "NoAuthDefinition",
    "OAuth2ClientCredentialsDefinition",
    "OffsetPagination",
    "PagePagination",
    "Pagination",
    "ParamSpec",
    "QuotaHeaders",
    "RateLimitDefinition",
    "ResilienceOverrides",
    "RetryOverrides",
]

#: The schema version these models describe; older files are migrated on load.
SCHEMA_VERSION: Final = 2

_NAME_RE: Final = re.compile(r"^[a-z][a-z0-9_-]*$")
_PLACEHOLDER_RE: Final = re.compile(r"\{([^{}]*)\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --- resilience ---------------------------------------------------------------------------------


class RetryOverrides(_Strict):
    """Retry settings for one connector; unset fields keep the environment/default value."""

    max_attempts: int | None = Field(None, ge=1, le=100, description="Attempts per call.")
    base_delay_ms: int | None = Field(None, ge=0, le=600_000, description="First backoff.")
    max_delay_ms: int | None = Field(None, ge=0, le=3_600_000, description="Backoff cap.")


class BreakerOverrides(_Strict):
    """Circuit-breaker settings for one connector."""

    mode: Literal["consecutive", "ratio"] | None = None
    threshold: int | None = Field(None, ge=1, le=10_000, description="Consecutive failures.")
    failure_ratio: float | None = Field(None, gt=0, le=1)
    minimum_calls: int | None = Field(None, ge=1, le=100_000)
    window_ms: int | None = Field(None, ge=1_000, le=86_400_000)
    reset_ms: int | None = Field(None, ge=1, le=86_400_000, description="Open → half-open.")
    half_open_max_calls: int | None = Field(None, ge=1, le=1_000)
    slow_call_ms: int | None = Field(None, ge=1, le=3_600_000)


class BulkheadOverrides(_Strict):
    """Concurrency limit for one connector."""

    max_concurrent: int | None = Field(None, ge=1, le=100_000)
    max_queue: int | None = Field(None, ge=0, le=1_000_000)


class ResilienceOverrides(_Strict):
    """The ``resilience:`` block of a definition."""

    retry: RetryOverrides = RetryOverrides()
    timeout_ms: int | None = Field(None, ge=1, le=3_600_000, description="Per attempt.")
    deadline_ms: int | None = Field(None, ge=1, le=86_400_000, description="Per operation.")
    circuit_breaker: BreakerOverrides = BreakerOverrides()
    bulkhead: BulkheadOverrides = BulkheadOverrides()


class RateLimitDefinition(_Strict):
    """One client-side rate limit: ``rate`` per second with a ``burst`` allowance."""

    key: str = Field(..., min_length=1, description="Name of the limit (per tenant).")
    rate: float = Field(..., gt=0, description="Sustained requests per second.")
    burst: float = Field(1.0, ge=1, description="Requests allowed at once before pacing.")
    cost: float = Field(1.0, gt=0, description="Units each request spends.")


# --- auth ---------------------------------------------------------------------------------------

_REF_DESCRIPTION = "A ${...} reference, e.g. ${secret:NAME}; never the secret itself."


def _must_be_reference(value: str) -> str:
    if "${" not in value:
        raise ValueError(
            "a secret must be a ${...} reference such as ${secret:NAME} or ${env:NAME}, "
            "never a literal value in a definition"
        )
    return value


SecretText = Annotated[str, Field(min_length=1, description=_REF_DESCRIPTION)]


class NoAuthDefinition(_Strict):
    """No authentication (public APIs, or an adapter that reads credentials from settings)."""

    kind: Literal["none"]


class ApiKeyAuthDefinition(_Strict):
    """An API key in a header (default ``X-API-Key``) or a query parameter."""

    kind: Literal["api_key"]
    key: SecretText
    header: str | None = Field(None, description="Header name; default X-API-Key.")
    query: str | None = Field(None, description="Query parameter name instead of a header.")
    prefix: str = Field("", description="Prepended to the header value, e.g. 'Token '.")

    _ref = field_validator("key")(_must_be_reference)

    @model_validator(mode="after")
    def _one_place(self) -> ApiKeyAuthDefinition:
        if self.header and self.query:
            raise ValueError("set either `header` or `query` for an API key, not both")
        return self


class BasicAuthDefinition(_Strict):
    """HTTP Basic with a username and a password reference."""

    kind: Literal["basic"]
    username: str = Field(..., min_length=1)
    password: SecretText

    _ref = field_validator("password")(_must_be_reference)


class BearerAuthDefinition(_Strict):
    """A fixed bearer token."""

    kind: Literal["bearer"]
    token: SecretText
    scheme: str = "Bearer"

    _ref = field_validator("token")(_must_be_reference)


class OAuth2ClientCredentialsDefinition(_Strict):
    """OAuth 2.0 client credentials; tokens are kept and refreshed by the Hub's token manager."""

    kind: Literal["oauth2_client_credentials"]
    token_url: str = Field(..., pattern=r"^https?://", examples=["https://auth.example.com/token"])
    client_id: str = Field(..., min_length=1)
    client_secret: SecretText
    scopes: list[str] = Field(default_factory=list, description="Scopes requested.")
    client_auth: Literal["client_secret_basic", "client_secret_post"] = "client_secret_basic"
    credential: str | None = Field(
        None, description="Name the token is stored under (default: '<connector>-oauth')."
    )

    _ref = field_validator("client_secret")(_must_be_reference)


AuthDefinition = Annotated[
    NoAuthDefinition
    | ApiKeyAuthDefinition
    | BasicAuthDefinition
    | BearerAuthDefinition
    | OAuth2ClientCredentialsDefinition,
    Field(discriminator="kind"),
]


# --- declarative REST (type: http) ----------------------------------------------------------------

ParamType = Literal["string", "integer", "number", "boolean", "array", "object"]


class ParamSpec(_Strict):
    """One argument of a declared operation."""

    type: ParamType = "string"
    required: bool | None = Field(None, description="Default: true unless a default is given.")
    default: object = None
    description: str = ""

    @property
    def is_required(self) -> bool:
        return self.required if self.required is not None else self.default is None


class _PaginationBase(_Strict):
    max_pages: int = Field(1000, ge=1, le=1_000_000, description="Stop after this many pages.")


class CursorPagination(_PaginationBase):
    """A cursor from the response body (or the last item) sent back as a query parameter."""

    style: Literal["cursor"]
    param: str = Field(..., description="Query parameter carrying the cursor.")
    cursor_path: str = Field(..., description="Selector of the cursor in the body or last item.")
    cursor_from: Literal["body", "last_item"] = "body"
    has_more_path: str | None = Field(None, description="Selector of a 'has more' boolean.")


class OffsetPagination(_PaginationBase):
    """``offset``/``limit`` query parameters."""

    style: Literal["offset"]
    offset_param: str = "offset"
    limit_param: str = "limit"
    page_size: int = Field(100, ge=1, le=100_000)


class PagePagination(_PaginationBase):
    """A page number (from ``start``) and a page size."""

    style: Literal["page"]
    page_param: str = "page"
    size_param: str | None = "per_page"
    page_size: int = Field(100, ge=1, le=100_000)
    start: int = Field(1, ge=0)


class LinkPagination(_PaginationBase):
    """RFC 8288 ``Link: <...>; rel="next"`` headers (GitHub)."""

    style: Literal["link"]


class NextUrlPagination(_PaginationBase):
    """The next page's URL in the response body."""

    style: Literal["next_url"]
    next_url_path: str = Field(..., description="Selector of the next URL, e.g. 'links.next'.")


Pagination = Annotated[
    CursorPagination | OffsetPagination | PagePagination | LinkPagination | NextUrlPagination,
    Field(discriminator="style"),
]

ErrorType = Literal[
    "NotFound",
    "Conflict",
    "InvalidRequest",
    "PermanentError",
    "RateLimited",
    "ServiceUnavailable",
    "AuthenticationFailed",
    "AuthorizationError",
    "accept",
]


class ErrorRule(_Strict):
    """Map a response to an error type by status and/or body fields (``accept``: success)."""

    status: int | list[int] | None = Field(None, examples=[404, [500, 502]])
    body: dict[str, str | int | float | bool | None] = Field(
        default_factory=dict,
        description="Selector → expected value; every entry must match.",
        examples=[{"error.code": "RATE"}],
    )
    type: ErrorType
    message: str | None = None

    @model_validator(mode="after")
    def _has_condition(self) -> ErrorRule:
        if self.status is None and not self.body:
            raise ValueError("an error rule needs a `status`, a `body` condition or both")
        return self


class QuotaHeaders(_Strict):
    """Headers reporting the remaining quota and its reset (seconds or an epoch time)."""

    name: str = Field("requests", description="Quota label in the remaining-quota metric.")
    remaining: list[str] = Field(
        default_factory=lambda: ["RateLimit-Remaining", "X-RateLimit-Remaining"]
    )
    reset: list[str] = Field(default_factory=lambda: ["RateLimit-Reset", "X-RateLimit-Reset"])


class NetworkPolicy(_Strict):
    """Where the connector may connect besides public addresses (SSRF allowlist)."""

    allow_private_addresses: bool = Field(
        False, description="Allow loopback/private targets (tests and internal APIs only)."
    )
    allow_nets: list[str] = Field(default_factory=list, examples=[["10.20.0.0/16"]])
    allow_hosts: list[str] = Field(default_factory=list, examples=[["api.internal"]])


_RESERVED_OPERATION_NAMES: Final = frozenset(
    {"call", "stream", "connect", "disconnect", "request", "attempt", "http", "operations"}
)


class HttpOperation(_Strict):
    """One declared REST operation, called as ``await conn.call("<name>", **arguments)``."""

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    path: str = Field(..., pattern=r"^/", examples=["/repos/{owner}/{repo}/issues"])
    description: str = ""
    params: dict[str, ParamSpec] = Field(default_factory=dict, description="Call arguments.")
    query: dict[str, str] = Field(default_factory=dict, examples=[{"state": "{state}"}])
    body: dict[str, object] | None = Field(None, examples=[{"title": "{title}"}])
    headers: dict[str, str] = Field(default_factory=dict)
    select: str | None = Field(None, examples=["data.items[*]"], description="Result selector.")
    pagination: Pagination | None = None
    paginate: bool = Field(True, description="Use the API's default pagination if none is set.")
    idempotent: bool | None = Field(None, description="Default: true for GET, PUT, DELETE.")
    scopes: list[str] = Field(default_factory=list)
    errors: list[ErrorRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _placeholders_are_params(self) -> HttpOperation:
        texts: list[tuple[str, str]] = [("path", self.path)]
        texts += [(f"query.{k}", v) for k, v in self.query.items()]
        texts += [(f"headers.{k}", v) for k, v in self.headers.items()]
        texts += [(f"body.{k}", v) for k, v in _strings(self.body or {}, "")]
        for where, text in texts:
            for name in _PLACEHOLDER_RE.findall(text):
                if name not in self.params:
                    known = ", ".join(sorted(self.params)) or "(none)"
                    raise ValueError(
                        f"{where} uses {{{name}}} but no parameter {name!r} is declared; "
                        f"declared: {known}"
                    )
                if where == "path" and not self.params[name].is_required:
                    raise ValueError(f"path parameter {name!r} must be required")
        return self

    @property
    def is_idempotent(self) -> bool:
        if self.idempotent is not None:
            return self.idempotent
        return self.method in ("GET", "PUT", "DELETE")


def _strings(value: object, prefix: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(prefix, value)]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _strings(v, f"{prefix}.{k}".lstrip("."))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _strings(v, f"{prefix}[{i}]")]
    return []


class HttpApi(_Strict):
    """The ``api:`` block of a declarative REST connector (``type: http``)."""

    headers: dict[str, str] = Field(default_factory=dict, description="Sent on every request.")
    pagination: Pagination | None = Field(None, description="Default for list operations.")
    errors: list[ErrorRule] = Field(default_factory=list, description="Tried after op rules.")
    error_code_path: str | None = Field(None, examples=["error.code"])
    quota: QuotaHeaders = QuotaHeaders()
    network: NetworkPolicy = NetworkPolicy()
    operations: dict[str, HttpOperation] = Field(..., min_length=1)

    @field_validator("operations")
    @classmethod
    def _operation_names(cls, value: dict[str, HttpOperation]) -> dict[str, HttpOperation]:
        for name in value:
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name) or name in _RESERVED_OPERATION_NAMES:
                raise ValueError(
                    f"operation name {name!r} must be snake_case and not one of "
                    f"{', '.join(sorted(_RESERVED_OPERATION_NAMES))}"
                )
        return value


# --- the definition ---------------------------------------------------------------------------


class ConnectorDefinition(_Strict):
    """One configured connector."""

    type: str = Field(
        ...,
        min_length=1,
        description="Adapter name, optionally pinned to a version range: 'salesforce@^1.2'.",
        examples=["salesforce", "salesforce@^1.2", "http"],
    )
    adapter_version: str | None = Field(
        None,
        description=f"Accepted adapter versions ({RANGE_FORMS}); also written 'type@range'.",
        examples=["^1.2"],
    )
    version: str | None = Field(None, description="Version of this definition (semver).")
    schema_version: int = Field(
        SCHEMA_VERSION,
        ge=1,
        le=SCHEMA_VERSION,
        description="Schema the file is written in; older ones are migrated on load.",
    )
    description: str = ""
    auth: AuthDefinition | None = None
    declared_settings: dict[str, object] = Field(
        default_factory=dict,
        alias="settings",
        description="Adapter settings; values may hold ${...} references.",
        examples=[{"base_url": "https://api.example.com", "api_version": "v59.0"}],
    )
    resilience: ResilienceOverrides = ResilienceOverrides()
    rate_limits: list[RateLimitDefinition] = Field(default_factory=list)
    scopes: list[str] = Field(default_factory=list, description="Provider scopes requested.")
    api: HttpApi | None = Field(None, description="Operations of a declarative REST connector.")

    @model_validator(mode="before")
    @classmethod
    def _split_pin(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("type"), str) and "@" in data["type"]:
            name, _, pin = data["type"].partition("@")
            if data.get("adapter_version") is not None:
                raise ValueError("pin the adapter either in `type` or in `adapter_version`")
            data = {**data, "type": name, "adapter_version": pin}
        return data

    @field_validator("type")
    @classmethod
    def _adapter_name(cls, value: str) -> str:
        if not _NAME_RE.match(value):
            raise ValueError(
                f"adapter name {value!r} must be lowercase letters, digits, '-' and '_', "
                "optionally followed by @RANGE"
            )
        return value

    @field_validator("adapter_version")
    @classmethod
    def _range(cls, value: str | None) -> str | None:
        if value is not None:
            VersionRange.parse(value)
        return value

    @field_validator("version")
    @classmethod
    def _semver(cls, value: str | None) -> str | None:
        if value is not None:
            Version.parse(value)
        return value

    @model_validator(mode="after")
    def _api_only_for_http(self) -> ConnectorDefinition:
        if self.api is not None and self.type != "http":
            raise ValueError("`api` describes declarative REST connectors; use type: http")
        return self

    @property
    def adapter_range(self) -> VersionRange | None:
        """The pinned adapter version range, if any."""
        return None if self.adapter_version is None else VersionRange.parse(self.adapter_version)

    @property
    def settings(self) -> dict[str, object]:
        """The adapter's settings: declared ``settings`` plus ``auth`` and ``api`` blocks."""
        merged = dict(self.declared_settings)
        if self.auth is not None:
            merged["auth"] = self.auth.model_dump(mode="json", exclude_none=True)
        if self.api is not None:
            merged["api"] = self.api.model_dump(mode="json", exclude_none=True)
        return merged

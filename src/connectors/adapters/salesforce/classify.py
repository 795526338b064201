"""Salesforce error bodies → typed errors, and quota bookkeeping on every response.

Salesforce answers errors with a JSON array of ``{"message", "errorCode", "fields"?}`` (sObject
Collections sometimes with a bare object). :class:`SalesforceClassifier` maps them::

    300 (external id matched several records)        Conflict(candidates=record ids)
    401 INVALID_SESSION_ID                             AuthenticationFailed (ManagedTokenAuth has
                                                       already refreshed once and retried)
    401 "not valid for use with the REST API"          AuthenticationFailed, says a refresh
                                                       cannot fix it
    403 REQUEST_LIMIT_EXCEEDED "TotalRequests"         RateLimited(quota="DailyApiRequests",
                                                       retry_after=daily_retry_after): long, so
                                                       the pipeline gives up; quota marked spent
    403 REQUEST_LIMIT_EXCEEDED (concurrent requests)   RateLimited(retry_after=short): retried
    other 403                                          AuthorizationError
    404, NOT_FOUND, ENTITY_IS_DELETED                  NotFound
    DUPLICATE_VALUE, DUPLICATE_EXTERNAL_ID, 409        Conflict
    410 (retired API version)                          IncompatibleVersion
    field errors, MALFORMED_QUERY, INVALID_TYPE,       InvalidRequest with FieldError per field
    other 4xx
    5xx, 429, 408                                      the framework's default table

Every error carries ``provider_code`` = the first ``errorCode``. Messages quote Salesforce's
message after redaction (live secret values masked) and truncation.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

import httpx2

from connectors.clock import Clock, system_clock
from connectors.errors import (
    AuthenticationFailed,
    AuthorizationError,
    Conflict,
    ConnectorError,
    FieldError,
    IncompatibleVersion,
    InvalidRequest,
    NotFound,
    PermanentError,
    RateLimited,
)
from connectors.http import EXCERPT_CHARS, ResponseClassifier
from connectors.secrets import MASK, live_secret_values

from .limits import QuotaState, Usage

__all__ = [
    "DAILY_QUOTA",
    "ApiErrorItem",
    "SalesforceClassifier",
    "error_for",
    "parse_errors",
    "redact_secrets",
]

DAILY_QUOTA: Final = "DailyApiRequests"
CONCURRENT_QUOTA: Final = "ConcurrentPerOrgLongTxn"
_NOT_REFRESHABLE: Final = "not valid for use with the REST API"
_NOT_FOUND_CODES: Final = frozenset({"NOT_FOUND", "ENTITY_IS_DELETED"})
_CONFLICT_CODES: Final = frozenset(
    {"DUPLICATE_VALUE", "DUPLICATE_EXTERNAL_ID", "DUPLICATES_DETECTED"}
)
_COLUMN: Final = re.compile(r"No such column '([^']+)'")
_RECORD_ID: Final = re.compile(r"/([A-Za-z0-9]{15,18})/?$")


@dataclass(frozen=True, slots=True)
class ApiErrorItem:
    """One element of a Salesforce error array."""

    code: str
    message: str
    fields: tuple[str, ...] = ()


def redact_secrets(text: str) -> str:
    """``text`` with every live :class:`~connectors.secrets.Secret` value masked."""
    for value in live_secret_values():
        if value and value in text:
            text = text.replace(value, MASK)
    return text


def _items_from(body: object) -> list[ApiErrorItem]:
    raw = body if isinstance(body, list) else [body]
    items: list[ApiErrorItem] = []
    for entry in raw:
        if not isinstance(entry, dict):
            continue
        code = entry.get("errorCode") or entry.get("statusCode") or entry.get("exceptionCode")
        message = entry.get("message") or entry.get("exceptionMessage") or ""
        fields = entry.get("fields") or ()
        if not isinstance(code, str):
            continue
        items.append(
            ApiErrorItem(
                code,
                message if isinstance(message, str) else str(message),
                tuple(str(f) for f in fields) if isinstance(fields, list) else (),
            )
        )
    return items


def parse_errors(response: httpx2.Response) -> list[ApiErrorItem]:
    """The error items of a (read) response; empty when the body is not an error array."""
    try:
        body = json.loads(response.content or b"null")
    except (ValueError, UnicodeDecodeError, httpx2.ResponseNotRead):
        return []
    return _items_from(body)


def _field_errors(items: Sequence[ApiErrorItem]) -> tuple[FieldError, ...]:
    out: list[FieldError] = []
    for item in items:
        if item.fields:
            out.extend(FieldError(f, item.message, item.code) for f in item.fields)
            continue
        column = _COLUMN.search(item.message)
        if column is not None:
            out.append(FieldError(column.group(1), item.message, item.code))
    return tuple(out)


def _summary(items: Sequence[ApiErrorItem], redact: Callable[[str], str]) -> str:
    parts = []
    for item in items[:3]:
        message = " ".join(redact(item.message).split())
        if len(message) > EXCERPT_CHARS:
            message = message[: EXCERPT_CHARS - 1] + "…"
        parts.append(f"{item.code}: {message}" if message else item.code)
    if len(items) > 3:
        parts.append(f"and {len(items) - 3} more")
    return "; ".join(parts)


def error_for(
    items: Sequence[ApiErrorItem],
    status: int | None = None,
    *,
    redact: Callable[[str], str] = redact_secrets,
    lead: str = "Salesforce rejected the request",
) -> ConnectorError:
    """The typed error for error items that are not about sessions or limits (also used for
    composite subrequests and per-record collection results)."""
    code = items[0].code if items else None
    codes = {item.code for item in items}
    message = f"{lead}: {_summary(items, redact)}" if items else lead
    if codes & _NOT_FOUND_CODES or status == 404:
        return NotFound(message, status=status, provider_code=code)
    if codes & _CONFLICT_CODES or status == 409:
        return Conflict(message, status=status, provider_code=code)
    if status == 410:
        return IncompatibleVersion(
            message,
            status=status,
            provider_code=code,
            hint="the API version is retired: set api_version to a supported one",
        )
    if status == 403 or "INSUFFICIENT_ACCESS" in (code or ""):
        return AuthorizationError(
            message,
            status=status,
            provider_code=code,
            hint="the user or connected app lacks the permission; check its profile",
        )
    if status is None or 400 <= status < 500:
        return InvalidRequest(
            message, fields=_field_errors(items), status=status, provider_code=code
        )
    return PermanentError(message, status=status, provider_code=code)


class SalesforceClassifier(ResponseClassifier):
    """The Salesforce classifier. ``quota`` is fed every response's ``Sforce-Limit-Info``;
    ``on_usage`` is called with each ``api-usage`` seen (metrics)."""

    def __init__(
        self,
        *,
        clock: Clock = system_clock,
        quota: QuotaState | None = None,
        on_usage: Callable[[Usage], None] | None = None,
        daily_retry_after: float = 3600.0,
        concurrent_retry_after: float | None = 1.0,
        redact: Callable[[str], str] = redact_secrets,
    ) -> None:
        super().__init__(clock=clock, redact=redact, provider_code=_first_code)
        self.quota = quota
        self.on_usage = on_usage
        self.daily_retry_after = daily_retry_after
        self.concurrent_retry_after = concurrent_retry_after
        self._redact_text = redact

    def classify(self, response: httpx2.Response) -> ConnectorError | None:
        if self.quota is not None:
            usage = self.quota.observe(response.headers)
            if usage is not None and self.on_usage is not None:
                self.on_usage(usage)
        if response.status_code == 300:
            return self._multiple_matches(response)
        return super().classify(response)

    def _multiple_matches(self, response: httpx2.Response) -> Conflict:
        try:
            body = json.loads(response.content or b"null")
        except (ValueError, UnicodeDecodeError, httpx2.ResponseNotRead):
            body = None
        urls = [u for u in body if isinstance(u, str)] if isinstance(body, list) else []
        ids = []
        for url in urls:
            match = _RECORD_ID.search(url)
            ids.append(match.group(1) if match else url)
        return Conflict(
            f"the external id matched {len(ids)} records; nothing was written",
            candidates=ids,
            status=300,
            provider_code="MULTIPLE_CHOICES",
            hint="make the external id unique, or update one of the candidate ids directly",
        )

    def classify_status(self, response: httpx2.Response) -> ConnectorError:
        status = response.status_code
        items = parse_errors(response)
        code = items[0].code if items else None
        text = " ".join(i.message for i in items)
        if status == 401:
            if _NOT_REFRESHABLE in text:
                return AuthenticationFailed(
                    "Salesforce does not accept this session for the REST API "
                    "(INVALID_SESSION_ID: This session is not valid for use with the REST API)",
                    status=status,
                    provider_code=code or "INVALID_SESSION_ID",
                    hint="a refresh cannot fix this: the session policy (high assurance, or a "
                    "non-API login) forbids REST; use a connected-app flow the policy allows",
                )
            return AuthenticationFailed(
                f"Salesforce rejected the session ({code or 'HTTP 401'})",
                status=status,
                provider_code=code,
                hint="the token was refreshed once and still refused: check the user is active "
                "and the connected app is approved",
            )
        if code == "REQUEST_LIMIT_EXCEEDED":
            if "TotalRequests" in text or (status == 403 and "Concurrent" not in text):
                if self.quota is not None:
                    self.quota.mark_exhausted(self.daily_retry_after)
                return RateLimited(
                    "the org's daily API request quota is exhausted (REQUEST_LIMIT_EXCEEDED: "
                    "TotalRequests Limit exceeded)",
                    retry_after=self.daily_retry_after,
                    quota=DAILY_QUOTA,
                    status=status,
                    provider_code=code,
                    hint="calls resume when the rolling 24-hour window frees quota; use Bulk API "
                    "or composite calls to spend fewer requests",
                )
            # The concurrency limit: back off for the server's Retry-After when it sends one.
            found = self.retry_after(response)
            return RateLimited(
                "too many concurrent long-running requests for the org (REQUEST_LIMIT_EXCEEDED: "
                "ConcurrentPerOrgLongTxn Limit exceeded)",
                retry_after=found if found is not None else self.concurrent_retry_after,
                quota=CONCURRENT_QUOTA,
                status=status,
                provider_code=code,
            )
        if status >= 500 or status in (408, 429) or (not items and status != 410):
            return super().classify_status(response)
        return error_for(items, status, redact=self._redact_text)


def _first_code(response: httpx2.Response) -> str | None:
    items = parse_errors(response)
    return items[0].code if items else None

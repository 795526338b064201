"""Salesforce error bodies become typed errors carrying the provider code."""

from __future__ import annotations

import httpx2
import pytest

from connectors.adapters.salesforce.classify import SalesforceClassifier
from connectors.adapters.salesforce.limits import QuotaState
from connectors.clock import FakeClock
from connectors.errors import (
    AuthenticationFailed,
    AuthorizationError,
    Conflict,
    IncompatibleVersion,
    InvalidRequest,
    NotFound,
    RateLimited,
    ServiceUnavailable,
)
from connectors.secrets import Secret


def _error(status: int, code: str, message: str = "m", fields: list[str] | None = None):
    item: dict[str, object] = {"message": message, "errorCode": code}
    if fields is not None:
        item["fields"] = fields
    request = httpx2.Request("GET", "https://x.my.salesforce.com/services/data/v62.0/q")
    return httpx2.Response(status, json=[item], request=request)


@pytest.mark.parametrize(
    ("status", "code", "kind"),
    [
        (404, "NOT_FOUND", NotFound),
        (404, "ENTITY_IS_DELETED", NotFound),
        (400, "DUPLICATE_VALUE", Conflict),
        (400, "MALFORMED_QUERY", InvalidRequest),
        (400, "INVALID_TYPE", InvalidRequest),
        (400, "STRING_TOO_LONG", InvalidRequest),
        (403, "INSUFFICIENT_ACCESS", AuthorizationError),
        (410, "GONE", IncompatibleVersion),
        (401, "INVALID_SESSION_ID", AuthenticationFailed),
        (503, "SERVER_UNAVAILABLE", ServiceUnavailable),
    ],
)
def test_error_codes_map_to_typed_errors(status: int, code: str, kind: type) -> None:
    error = SalesforceClassifier().classify(_error(status, code))
    assert isinstance(error, kind)
    assert error.provider_code == code


def test_field_errors_carry_each_field() -> None:
    error = SalesforceClassifier().classify(
        _error(400, "REQUIRED_FIELD_MISSING", "Required fields are missing", ["LastName", "Co"])
    )
    assert isinstance(error, InvalidRequest)
    assert [f.field for f in error.fields] == ["LastName", "Co"]
    assert error.fields[0].code == "REQUIRED_FIELD_MISSING"


def test_daily_limit_is_not_retried_and_marks_quota_while_concurrency_is_retried() -> None:
    quota = QuotaState(FakeClock())
    classifier = SalesforceClassifier(quota=quota, daily_retry_after=7200)
    daily = classifier.classify(
        _error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
    )
    assert isinstance(daily, RateLimited)
    assert daily.retry_after == 7200
    assert quota.exhausted_for() == 7200
    busy = classifier.classify(
        _error(403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.")
    )
    assert isinstance(busy, RateLimited)
    assert busy.retry_after == 1.0
    assert busy.quota == "ConcurrentPerOrgLongTxn"


def test_300_is_a_conflict_with_candidate_ids() -> None:
    response = httpx2.Response(
        300,
        json=[
            "/services/data/v62.0/sobjects/Contact/003000000000001AAA",
            "/services/data/v62.0/sobjects/Contact/003000000000002AAA",
        ],
    )
    error = SalesforceClassifier().classify(response)
    assert isinstance(error, Conflict)
    assert error.candidates == ("003000000000001AAA", "003000000000002AAA")


def test_a_secret_echoed_in_an_error_message_is_masked() -> None:
    secret = Secret("super-secret-token-value")
    error = SalesforceClassifier().classify(
        _error(400, "INVALID_FIELD", f"bad value {secret.reveal()}")
    )
    assert error is not None
    assert secret.reveal() not in str(error)


def test_the_concurrency_limit_waits_for_the_servers_retry_after_when_it_sends_one() -> None:
    classifier = SalesforceClassifier(quota=QuotaState(FakeClock()))
    answer = _error(429, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded.")
    answer.headers["Retry-After"] = "0.25"
    busy = classifier.classify(answer)
    assert isinstance(busy, RateLimited)
    assert busy.retry_after == 0.25

"""Declared error rules and quota headers: pure functions over responses.

``errors:`` rules (operation rules first, then the API's) become one classifier rule: the first
whose ``status`` and every ``body`` condition match decides the error type (or ``accept``), so a
provider's ``200 {"ok": false}`` or ``400 {"code": "RATE"}`` maps to the right typed error and the
retry policy does the right thing. :func:`read_quota` reads the remaining-quota headers
(``RateLimit-Remaining``/``X-RateLimit-Remaining``) and their reset (seconds, or an epoch time as
GitHub sends), which the connector feeds to the metrics and the limiter.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import httpx2

from connectors.adapters.http.selector import Selector
from connectors.config.definition import ErrorRule, QuotaHeaders
from connectors.errors import (
    AuthenticationFailed,
    AuthorizationError,
    Conflict,
    ConnectorError,
    InvalidRequest,
    NotFound,
    PermanentError,
    RateLimited,
    ServiceUnavailable,
)
from connectors.http import ACCEPT, ProviderCodeHook, ResponseClassifier, Rule, RuleResult

__all__ = ["ERROR_TYPES", "Quota", "error_rule", "provider_code_hook", "read_quota"]

#: Error type names a definition may use, and the class each stands for.
ERROR_TYPES: Final[dict[str, type[ConnectorError]]] = {
    "NotFound": NotFound,
    "Conflict": Conflict,
    "InvalidRequest": InvalidRequest,
    "PermanentError": PermanentError,
    "RateLimited": RateLimited,
    "ServiceUnavailable": ServiceUnavailable,
    "AuthenticationFailed": AuthenticationFailed,
    "AuthorizationError": AuthorizationError,
}

#: A reset value above this is an epoch time, below it a number of seconds.
_EPOCH_THRESHOLD: Final = 1_000_000_000


def _body(response: httpx2.Response) -> object:
    try:
        return json.loads(response.content)
    except (ValueError, httpx2.ResponseNotRead):
        return None


def _matches(rule: ErrorRule, response: httpx2.Response, body: object) -> bool:
    if rule.status is not None:
        statuses = rule.status if isinstance(rule.status, list) else [rule.status]
        if response.status_code not in statuses:
            return False
    return all(Selector.parse(sel).select(body) == want for sel, want in rule.body.items())


def error_rule(rules: Sequence[ErrorRule]) -> Rule:
    """One classifier rule trying ``rules`` in order."""
    frozen = tuple(rules)

    def classify(response: httpx2.Response, classifier: ResponseClassifier) -> RuleResult:
        if not frozen:
            return None
        body = _body(response) if any(r.body for r in frozen) else None
        for rule in frozen:
            if not _matches(rule, response, body):
                continue
            if rule.type == "accept":
                return ACCEPT
            cls = ERROR_TYPES[rule.type]
            retry_after = classifier.retry_after(response)
            return classifier.error(cls, response, rule.message, retry_after=retry_after)
        return None

    return classify


def provider_code_hook(path: str | None) -> ProviderCodeHook | None:
    """A provider-code hook reading ``path`` from a JSON error body (``None``: no hook)."""
    if path is None:
        return None
    selector = Selector.parse(path)

    def code(response: httpx2.Response) -> str | None:
        value = selector.select(_body(response))
        return str(value)[:64] if value is not None else None

    return code


@dataclass(frozen=True, slots=True)
class Quota:
    """What the provider said about the quota: units left and seconds until it resets."""

    remaining: float
    reset_after: float | None


def _first(response: httpx2.Response, names: Sequence[str]) -> float | None:
    for name in names:
        raw = response.headers.get(name)
        if raw is None:
            continue
        try:
            value = float(raw.strip())
        except ValueError:
            continue
        if value == value and value >= 0:  # not NaN, not negative
            return value
    return None


def read_quota(response: httpx2.Response, spec: QuotaHeaders, now: float) -> Quota | None:
    """The quota headers of ``response`` (``None`` when it sends none); ``now`` is wall time."""
    remaining = _first(response, spec.remaining)
    if remaining is None:
        return None
    reset = _first(response, spec.reset)
    if reset is not None and reset > _EPOCH_THRESHOLD:
        reset = max(reset - now, 0.0)
    return Quota(remaining, reset)

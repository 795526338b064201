"""Fault injection in front of the Salesforce emulator, answering in Salesforce's error shape."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp

from connectors.clock import Clock
from connectors.testing.faults import FaultInjector, FaultPlan

__all__ = ["SALESFORCE_ERROR_BODY", "SALESFORCE_RATE_LIMIT_BODY", "salesforce_faults"]

#: What an injected 429 answers: Salesforce's array-of-errors body for its *transient* limit
#: (too many concurrent long requests), which clients retry after a short wait. The daily quota
#: ("TotalRequests Limit exceeded", HTTP 403) is a different, long-lived condition: the emulator
#: enforces it itself (``set_api_quota``), and faults must not fake it.
SALESFORCE_RATE_LIMIT_BODY = (
    b'[{"message":"ConcurrentPerOrgLongTxn Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]'
)
#: What an injected 5xx answers.
SALESFORCE_ERROR_BODY = (
    b'[{"message":"An unexpected error occurred.","errorCode":"UNKNOWN_EXCEPTION"}]'
)


def salesforce_faults(
    app: ASGIApp,
    plan: FaultPlan | str | None = None,
    *,
    seed: int = 0,
    clock: Clock | None = None,
    on_expire_tokens: Callable[[], object] | None = None,
) -> FaultInjector:
    """A :class:`FaultInjector` whose injected errors look like Salesforce's own."""
    return FaultInjector(
        app,
        plan,
        seed=seed,
        clock=clock,
        on_expire_tokens=on_expire_tokens,
        rate_limit_body=SALESFORCE_RATE_LIMIT_BODY,
        error_json_body=SALESFORCE_ERROR_BODY,
    )

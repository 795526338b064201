"""Connector definitions: the tenant-agnostic description of one configured connector.

A definition names its adapter (``type``), adapter ``settings``, ``resilience`` overrides and
``rate_limits``. The Hub merges, lowest to highest precedence: built-in defaults, ``CONNECTOR_*``
environment, the definition, the tenant's overrides, and explicit arguments.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "BreakerOverrides",
    "BulkheadOverrides",
    "ConnectorDefinition",
    "RateLimitDefinition",
    "ResilienceOverrides",
    "RetryOverrides",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


class ConnectorDefinition(_Strict):
    """One configured connector."""

    type: str = Field(..., min_length=1, description="Adapter name, e.g. 'salesforce'.")
    version: str | None = Field(None, description="Version of this definition.")
    settings: dict[str, object] = Field(default_factory=dict)
    resilience: ResilienceOverrides = ResilienceOverrides()
    rate_limits: list[RateLimitDefinition] = Field(default_factory=list)
    scopes: list[str] = Field(default_factory=list)

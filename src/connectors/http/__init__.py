"""The connector HTTP client and response classification.

:class:`ConnectorHttpClient` sends every attempt through the resilience pipeline with the
attempt's timeout; :class:`ResponseClassifier` turns responses and transport failures into the
typed errors of :mod:`connectors.errors`. The SSRF guard plugs in as a ``transport_factory``.
"""

from __future__ import annotations

from connectors.http.classify import (
    ACCEPT,
    EXCERPT_CHARS,
    Accept,
    ProviderCodeHook,
    Redactor,
    ResponseClassifier,
    Rule,
    RuleResult,
)
from connectors.http.client import (
    DEFAULT_LIMITS,
    IDEMPOTENT_METHODS,
    AttemptPipeline,
    ConnectorHttpClient,
    HttpObserver,
    RequestOptions,
    TransportFactory,
    user_agent,
)

__all__ = [
    "ACCEPT",
    "DEFAULT_LIMITS",
    "EXCERPT_CHARS",
    "IDEMPOTENT_METHODS",
    "Accept",
    "AttemptPipeline",
    "ConnectorHttpClient",
    "HttpObserver",
    "ProviderCodeHook",
    "Redactor",
    "RequestOptions",
    "ResponseClassifier",
    "Rule",
    "RuleResult",
    "TransportFactory",
    "user_agent",
]

"""Observability: Prometheus metrics, structured logs with redaction, spans, the health model.

Importing this package configures nothing: logging is set up by an explicit
:func:`configure_logging`, each :class:`Metrics` owns its registry, and spans stay no-ops until
an OpenTelemetry SDK provider is installed.
"""

from connectors.observability.health import (
    Health,
    HealthCheck,
    HealthSnapshot,
    HealthStatus,
    HealthTracker,
)
from connectors.observability.logging import Logger, configure_logging, get_logger
from connectors.observability.metrics import Metrics, status_class
from connectors.observability.redaction import Redactor, default_redactor, redact_text
from connectors.observability.tracing import Tracing, refresh_tracing, span

__all__ = [
    "Health",
    "HealthCheck",
    "HealthSnapshot",
    "HealthStatus",
    "HealthTracker",
    "Logger",
    "Metrics",
    "Redactor",
    "Tracing",
    "configure_logging",
    "default_redactor",
    "get_logger",
    "redact_text",
    "refresh_tracing",
    "span",
    "status_class",
]

"""Prometheus metrics for connector calls, one :class:`Metrics` (and registry) per Hub.

Families (every one labelled by ``connector`` and ``tenant``)::

    connector_operations_total{connector,tenant,operation,outcome}               counter
    connector_operation_duration_seconds{connector,tenant,operation}             histogram
    connector_http_requests_total{connector,tenant,operation,status_class}       counter
    connector_retries_total{connector,tenant,operation,reason}                   counter
    connector_circuit_state{connector,tenant}     gauge: 0 closed, 1 half-open, 2 open, 3 forced
    connector_circuit_transitions_total{connector,tenant,from_state,to_state}    counter
    connector_rate_limit_wait_seconds{connector,tenant}                          histogram
    connector_rate_limit_remaining{connector,tenant,quota}                       gauge
    connector_state_fallback_total{operation}                                    counter

Nothing is registered globally and nothing happens at import time: each :class:`Metrics` owns a
``CollectorRegistry``. ``operation`` and ``http_request`` run on every call, so the label tuple
is looked up in a dict of cells (no ``.labels()``), and one lock guards plain list updates.

The ``tenant`` label can be kept, dropped (empty value) or replaced by a short stable hash
(first 8 hex digits of SHA-256) for fleets with many tenants.
"""

from __future__ import annotations

import hashlib
import threading
from bisect import bisect_left
from collections.abc import Mapping
from typing import Final, Literal

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from connectors.observability._families import Family, FamilyCollector

__all__ = [
    "CIRCUIT_STATES",
    "DURATION_BUCKETS",
    "RATE_LIMIT_WAIT_BUCKETS",
    "Metrics",
    "TenantLabelMode",
    "status_class",
]

TenantLabelMode = Literal["keep", "drop", "hash"]

#: Operation duration buckets, seconds: 5 ms to 60 s.
DURATION_BUCKETS: Final = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
#: Rate-limit wait buckets, seconds: 1 ms to 60 s.
RATE_LIMIT_WAIT_BUCKETS: Final = (
    0.001,
    0.005,
    0.01,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
)
#: Gauge values of ``connector_circuit_state``.
CIRCUIT_STATES: Final[Mapping[str, int]] = {
    "closed": 0,
    "half_open": 1,
    "open": 2,
    "forced_open": 3,
}


def status_class(status: int | None) -> str:
    """``"2xx"``... ``"5xx"`` for an HTTP status, ``"error"`` when there was no response."""
    if status is None or not 100 <= status <= 599:
        return "error"
    return f"{status // 100}xx"


def _state_name(state: object) -> str:
    raw = getattr(state, "value", state)
    name = str(raw).lower().replace("-", "_").replace(" ", "_")
    if name not in CIRCUIT_STATES:
        raise ValueError(f"unknown circuit state {raw!r}; expected one of {list(CIRCUIT_STATES)}")
    return name


class Metrics:
    """The framework's metrics, in a registry of their own.

    Recording methods take plain strings; ``tenant`` is transformed by ``tenant_label``.
    """

    def __init__(
        self,
        *,
        tenant_label: TenantLabelMode = "keep",
        registry: CollectorRegistry | None = None,
    ) -> None:
        if tenant_label not in ("keep", "drop", "hash"):
            raise ValueError(f"tenant_label must be 'keep', 'drop' or 'hash', not {tenant_label!r}")
        self.tenant_label_mode: TenantLabelMode = tenant_label
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self._lock = threading.Lock()
        base = ("connector", "tenant")
        self._operations = Family(
            "connector_operations_total",
            "Operations finished, by outcome (success, failure, denied).",
            (*base, "operation", "outcome"),
            "counter",
        )
        self._durations = Family(
            "connector_operation_duration_seconds",
            "Operation duration including retries and waits.",
            (*base, "operation"),
            "histogram",
            DURATION_BUCKETS,
        )
        self._http = Family(
            "connector_http_requests_total",
            "HTTP attempts, by status class (2xx, 4xx, 5xx, error for no response).",
            (*base, "operation", "status_class"),
            "counter",
        )
        self._retries = Family(
            "connector_retries_total",
            "Retries scheduled, by reason.",
            (*base, "operation", "reason"),
            "counter",
        )
        self._circuit = Family(
            "connector_circuit_state",
            "Circuit breaker state: 0 closed, 1 half-open, 2 open, 3 forced open by an operator.",
            base,
            "gauge",
        )
        self._transitions = Family(
            "connector_circuit_transitions_total",
            "Circuit breaker state changes.",
            (*base, "from_state", "to_state"),
            "counter",
        )
        self._waits = Family(
            "connector_rate_limit_wait_seconds",
            "Time spent waiting for the rate limiter.",
            base,
            "histogram",
            RATE_LIMIT_WAIT_BUCKETS,
        )
        self._remaining = Family(
            "connector_rate_limit_remaining",
            "Remaining provider quota as last reported, by quota name.",
            (*base, "quota"),
            "gauge",
        )
        self._fallbacks = Family(
            "connector_state_fallback_total",
            "Shared-state operations served locally because Redis was unreachable (fail-open).",
            ("operation",),
            "counter",
        )
        families = (
            self._operations,
            self._durations,
            self._http,
            self._retries,
            self._circuit,
            self._transitions,
            self._waits,
            self._remaining,
            self._fallbacks,
        )
        self.registry.register(FamilyCollector(families, self._lock))
        self._op_cache: dict[tuple[str, str, str, str], tuple[list[float], list[float]]] = {}
        self._http_cache: dict[tuple[str, str, str, str], list[float]] = {}
        self._tenants: dict[str, str] = {}

    # --- labels ------------------------------------------------------------------------------

    def tenant_label(self, tenant: str) -> str:
        """The ``tenant`` label value exported for ``tenant`` under the configured mode."""
        found = self._tenants.get(tenant)
        if found is None:
            if self.tenant_label_mode == "keep":
                found = tenant
            elif self.tenant_label_mode == "drop":
                found = ""
            else:
                found = hashlib.sha256(tenant.encode()).hexdigest()[:8]
            self._tenants[tenant] = found
        return found

    def _cell(self, family: Family, connector: str, tenant: str, *rest: str) -> list[float]:
        with self._lock:
            return family.cell((connector, self.tenant_label(tenant), *rest))

    # --- hot path ------------------------------------------------------------------------------

    def operation(
        self, connector: str, tenant: str, operation: str, outcome: str, duration: float
    ) -> None:
        """Count one finished operation and observe its duration (seconds)."""
        key = (connector, tenant, operation, outcome)
        cells = self._op_cache.get(key)
        if cells is None:
            cells = (
                self._cell(self._operations, connector, tenant, operation, outcome),
                self._cell(self._durations, connector, tenant, operation),
            )
            self._op_cache[key] = cells
        count, histogram = cells
        index = bisect_left(DURATION_BUCKETS, duration)
        with self._lock:
            count[0] += 1.0
            histogram[index] += 1.0
            histogram[-1] += duration

    def http_request(self, connector: str, tenant: str, operation: str, status_class: str) -> None:
        """Count one HTTP attempt; ``status_class`` as from :func:`status_class`."""
        key = (connector, tenant, operation, status_class)
        cell = self._http_cache.get(key)
        if cell is None:
            cell = self._cell(self._http, connector, tenant, operation, status_class)
            self._http_cache[key] = cell
        with self._lock:
            cell[0] += 1.0

    # --- resilience events ---------------------------------------------------------------------

    def retry(self, connector: str, tenant: str, operation: str, reason: str) -> None:
        """Count one scheduled retry (``reason``: the error code or class that caused it)."""
        cell = self._cell(self._retries, connector, tenant, operation, reason)
        with self._lock:
            cell[0] += 1.0

    def circuit_state(self, connector: str, tenant: str, state: str) -> None:
        """Set the breaker gauge: ``"closed"``, ``"half_open"`` (or ``"half-open"``), ``"open"``."""
        value = CIRCUIT_STATES[_state_name(state)]
        cell = self._cell(self._circuit, connector, tenant)
        with self._lock:
            cell[0] = float(value)

    def circuit_transition(
        self, connector: str, tenant: str, from_state: str, to_state: str
    ) -> None:
        """Count one breaker transition (states as for :meth:`circuit_state`)."""
        names = (_state_name(from_state), _state_name(to_state))
        cell = self._cell(self._transitions, connector, tenant, *names)
        with self._lock:
            cell[0] += 1.0

    def rate_limit_wait(self, connector: str, tenant: str, seconds: float) -> None:
        """Observe a wait imposed by the rate limiter."""
        cell = self._cell(self._waits, connector, tenant)
        index = bisect_left(RATE_LIMIT_WAIT_BUCKETS, seconds)
        with self._lock:
            cell[index] += 1.0
            cell[-1] += seconds

    def rate_limit_remaining(
        self, connector: str, tenant: str, quota: str, remaining: float
    ) -> None:
        """Record the remaining quota a provider reported (e.g. Salesforce ``DailyApiRequests``)."""
        cell = self._cell(self._remaining, connector, tenant, quota)
        with self._lock:
            cell[0] = float(remaining)

    def state_fallback(self, operation: str) -> None:
        """Count one state operation served by the local fallback while Redis was unreachable."""
        with self._lock:
            self._fallbacks.cell((operation,))[0] += 1.0

    # --- reading -------------------------------------------------------------------------------

    #: Content type of :meth:`render` (the Prometheus text format of prometheus_client).
    content_type: Final = CONTENT_TYPE_LATEST

    def render(self) -> bytes:
        """The Prometheus text exposition of every family."""
        return generate_latest(self.registry)

    def value(self, name: str, **labels: str) -> float | None:
        """A sample's current value, or ``None`` when it was never recorded.

        ``name`` is a sample name (``connector_operations_total``,
        ``connector_operation_duration_seconds_count``, ``..._bucket`` with ``le="0.5"``...).
        ``tenant`` is given in clear and transformed like recorded labels.
        """
        if "tenant" in labels:
            labels["tenant"] = self.tenant_label(labels["tenant"])
        return self.registry.get_sample_value(name, labels)

    def samples(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """Every sample as ``{(name, labels): value}`` (for tests and the dashboard)."""
        out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for metric in self.registry.collect():
            for sample in metric.samples:
                out[(sample.name, frozenset(sample.labels.items()))] = sample.value
        return out

"""Metrics: exact families and labels, own registry, tenant label modes, cached hot path."""

from __future__ import annotations

import hashlib
import threading

import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families

from connectors.observability.metrics import DURATION_BUCKETS, Metrics, status_class

LABELS = {"connector": "salesforce", "tenant": "acme", "operation": "create"}


def families(metrics: Metrics) -> dict[str, str]:
    return {f.name: f.type for f in text_string_to_metric_families(metrics.render().decode())}


def test_render_exposes_exactly_the_documented_families() -> None:
    m = Metrics()
    m.operation("salesforce", "acme", "create", "success", 0.2)
    m.http_request("salesforce", "acme", "create", "2xx")
    m.retry("salesforce", "acme", "create", "RateLimited")
    m.circuit_state("salesforce", "acme", "open")
    m.circuit_transition("salesforce", "acme", "closed", "open")
    m.rate_limit_wait("salesforce", "acme", 0.3)
    m.rate_limit_remaining("salesforce", "acme", "DailyApiRequests", 14_000)
    m.state_fallback("rate_acquire")
    # The parser strips the _total suffix from counter family names.
    assert families(m) == {
        "connector_operations": "counter",
        "connector_operation_duration_seconds": "histogram",
        "connector_http_requests": "counter",
        "connector_retries": "counter",
        "connector_circuit_state": "gauge",
        "connector_circuit_transitions": "counter",
        "connector_rate_limit_wait_seconds": "histogram",
        "connector_rate_limit_remaining": "gauge",
        "connector_state_fallback": "counter",
    }
    assert m.content_type == prometheus_client.CONTENT_TYPE_LATEST
    assert m.content_type.startswith("text/plain; version=")


def test_operation_counts_by_outcome_and_observes_duration() -> None:
    m = Metrics()
    m.operation("salesforce", "acme", "create", "success", 0.2)
    m.operation("salesforce", "acme", "create", "success", 0.004)
    m.operation("salesforce", "acme", "create", "failure", 3.0)
    assert m.value("connector_operations_total", **LABELS, outcome="success") == 2
    assert m.value("connector_operations_total", **LABELS, outcome="failure") == 1
    assert m.value("connector_operation_duration_seconds_count", **LABELS) == 3
    assert m.value("connector_operation_duration_seconds_sum", **LABELS) == pytest.approx(3.204)
    assert m.value("connector_operation_duration_seconds_bucket", **LABELS, le="0.005") == 1
    assert m.value("connector_operation_duration_seconds_bucket", **LABELS, le="0.25") == 2
    assert m.value("connector_operation_duration_seconds_bucket", **LABELS, le="+Inf") == 3


def test_duration_buckets_span_5ms_to_60s_and_are_inclusive() -> None:
    assert DURATION_BUCKETS[0] == 0.005
    assert DURATION_BUCKETS[-1] == 60.0
    m = Metrics()
    m.operation("c", "t", "op", "success", 0.005)  # exactly on a bound: counted in it
    m.operation("c", "t", "op", "success", 120.0)  # beyond the last bound: only +Inf
    labels = {"connector": "c", "tenant": "t", "operation": "op"}
    assert m.value("connector_operation_duration_seconds_bucket", **labels, le="0.005") == 1
    assert m.value("connector_operation_duration_seconds_bucket", **labels, le="60.0") == 1
    assert m.value("connector_operation_duration_seconds_bucket", **labels, le="+Inf") == 2


def test_http_requests_by_status_class() -> None:
    m = Metrics()
    for status in (200, 201, 429, 503, None):
        m.http_request("slack", "acme", "post_message", status_class(status))
    labels = {"connector": "slack", "tenant": "acme", "operation": "post_message"}
    assert m.value("connector_http_requests_total", **labels, status_class="2xx") == 2
    assert m.value("connector_http_requests_total", **labels, status_class="4xx") == 1
    assert m.value("connector_http_requests_total", **labels, status_class="5xx") == 1
    assert m.value("connector_http_requests_total", **labels, status_class="error") == 1


@pytest.mark.parametrize(
    ("status", "expected"),
    [(200, "2xx"), (302, "3xx"), (404, "4xx"), (599, "5xx"), (None, "error")],
)
def test_status_class(status: int | None, expected: str) -> None:
    assert status_class(status) == expected


def test_retries_and_rate_limits() -> None:
    m = Metrics()
    m.retry("sf", "acme", "query", "ServiceUnavailable")
    m.retry("sf", "acme", "query", "ServiceUnavailable")
    m.rate_limit_wait("sf", "acme", 0.5)
    m.rate_limit_remaining("sf", "acme", "DailyApiRequests", 100)
    m.rate_limit_remaining("sf", "acme", "DailyApiRequests", 99)
    assert (
        m.value(
            "connector_retries_total",
            connector="sf",
            tenant="acme",
            operation="query",
            reason="ServiceUnavailable",
        )
        == 2
    )
    assert m.value("connector_rate_limit_wait_seconds_sum", connector="sf", tenant="acme") == 0.5
    assert (
        m.value(
            "connector_rate_limit_remaining",
            connector="sf",
            tenant="acme",
            quota="DailyApiRequests",
        )
        == 99
    )


@pytest.mark.parametrize(
    ("state", "value"), [("closed", 0), ("half_open", 1), ("half-open", 1), ("OPEN", 2)]
)
def test_circuit_state_gauge_values(state: str, value: int) -> None:
    m = Metrics()
    m.circuit_state("sf", "acme", state)
    assert m.value("connector_circuit_state", connector="sf", tenant="acme") == value


def test_circuit_transitions_use_canonical_state_names() -> None:
    m = Metrics()
    m.circuit_transition("sf", "acme", "open", "half-open")
    assert (
        m.value(
            "connector_circuit_transitions_total",
            connector="sf",
            tenant="acme",
            from_state="open",
            to_state="half_open",
        )
        == 1
    )


def test_unknown_circuit_state_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown circuit state"):
        Metrics().circuit_state("sf", "acme", "ajar")


def test_tenant_label_drop_uses_an_empty_value() -> None:
    m = Metrics(tenant_label="drop")
    m.operation("sf", "acme", "create", "success", 0.1)
    m.operation("sf", "globex", "create", "success", 0.1)
    assert 'tenant=""' in m.render().decode()
    assert "acme" not in m.render().decode()
    assert (
        m.value(
            "connector_operations_total",
            connector="sf",
            tenant="",
            operation="create",
            outcome="success",
        )
        == 2
    )


def test_tenant_label_hash_is_short_and_stable() -> None:
    expected = hashlib.sha256(b"acme").hexdigest()[:8]
    first, second = Metrics(tenant_label="hash"), Metrics(tenant_label="hash")
    for m in (first, second):
        m.operation("salesforce", "acme", "create", "success", 0.1)
        assert f'tenant="{expected}"' in m.render().decode()
        assert "acme" not in m.render().decode()
    # value() accepts the clear tenant and applies the same transformation
    assert first.value("connector_operations_total", **LABELS, outcome="success") == 1


def test_invalid_tenant_label_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="tenant_label"):
        Metrics(tenant_label="mask")  # type: ignore[arg-type]


def test_each_metrics_owns_its_registry_and_never_touches_the_global_one() -> None:
    a, b = Metrics(), Metrics()
    a.operation("sf", "acme", "create", "success", 0.1)
    assert a.registry is not b.registry
    assert b.value("connector_operations_total", **LABELS, outcome="success") is None
    assert (
        prometheus_client.REGISTRY.get_sample_value(
            "connector_operations_total", {**LABELS, "outcome": "success"}
        )
        is None
    )


def test_never_recorded_sample_is_none() -> None:
    assert Metrics().value("connector_operations_total", **LABELS, outcome="success") is None


def test_samples_lists_every_sample() -> None:
    m = Metrics()
    m.http_request("salesforce", "acme", "create", "2xx")
    key = (
        "connector_http_requests_total",
        frozenset({**LABELS, "status_class": "2xx"}.items()),
    )
    assert m.samples()[key] == 1


def test_concurrent_recording_loses_no_update() -> None:
    m = Metrics()

    def work() -> None:
        for _ in range(5_000):
            m.operation("salesforce", "acme", "create", "success", 0.01)
            m.http_request("salesforce", "acme", "create", "2xx")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert m.value("connector_operations_total", **LABELS, outcome="success") == 20_000
    assert m.value("connector_operation_duration_seconds_count", **LABELS) == 20_000
    assert m.value("connector_http_requests_total", **LABELS, status_class="2xx") == 20_000


def test_hot_path_reuses_cached_cells() -> None:
    m = Metrics()
    m.operation("sf", "acme", "create", "success", 0.1)
    cells = m._op_cache[("sf", "acme", "create", "success")]
    m.operation("sf", "acme", "create", "success", 0.1)
    assert m._op_cache[("sf", "acme", "create", "success")] is cells
    assert len(m._op_cache) == 1

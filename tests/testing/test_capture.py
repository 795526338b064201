"""Capture helpers: redacted log events as dicts, metric values without scraping."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest

from connectors.observability.logging import configure_logging, get_logger, reset_logging
from connectors.observability.metrics import Metrics
from connectors.observability.redaction import MASK
from connectors.secrets import Secret
from connectors.testing.capture import MetricsSnapshot, capture_logs, metric_value


@pytest.fixture(autouse=True)
def _fresh_logging() -> Iterator[None]:
    reset_logging()
    yield
    reset_logging()


def test_capture_logs_collects_events_at_debug_even_when_level_is_higher() -> None:
    out = io.StringIO()
    configure_logging("WARNING", stream=out)
    log = get_logger("t").bind(connector="sf")
    with capture_logs() as events:
        log.debug("operation.success", operation="create")
        log.info("other")
    assert [e["event"] for e in events] == ["operation.success", "other"]
    assert events[0]["connector"] == "sf"
    assert events[0]["level"] == "debug"
    assert "timestamp" in events[0]
    assert out.getvalue() == ""  # nothing reached the output while capturing


def test_captured_events_are_redacted_as_emitted() -> None:
    secret = Secret("captured-secret-1")
    with capture_logs() as events:
        get_logger("t").info("echo captured-secret-1", token="abc", header="Bearer xyz123")
    [event] = events
    assert "captured-secret-1" not in json.dumps(event)
    assert event["token"] == MASK
    assert event["header"] == f"Bearer {MASK}"
    del secret


def test_capture_level_filters() -> None:
    with capture_logs("WARNING") as events:
        get_logger("t").info("dropped")
        get_logger("t").error("kept")
    assert [e["event"] for e in events] == ["kept"]


def test_previous_configuration_is_restored_after_capture() -> None:
    out = io.StringIO()
    configure_logging("INFO", stream=out)
    log = get_logger("t")
    with capture_logs():
        log.info("captured")
    log.info("written")
    log.debug("still filtered")
    assert [json.loads(line)["event"] for line in out.getvalue().splitlines()] == ["written"]


def test_metric_value_is_zero_when_never_recorded() -> None:
    m = Metrics()
    labels = {"connector": "sf", "tenant": "acme", "operation": "create"}
    assert metric_value(m, "connector_operations_total", **labels, outcome="success") == 0.0
    m.operation("sf", "acme", "create", "success", 0.1)
    assert metric_value(m, "connector_operations_total", **labels, outcome="success") == 1.0


def test_snapshot_totals_sum_over_unspecified_labels_and_deltas() -> None:
    m = Metrics(tenant_label="hash")
    m.operation("sf", "acme", "create", "success", 0.1)
    before = MetricsSnapshot.take(m)
    m.operation("sf", "acme", "create", "failure", 0.1)
    m.operation("slack", "globex", "post", "failure", 0.1)
    after = MetricsSnapshot.take(m)
    assert after.total("connector_operations_total") == 3
    assert after.total("connector_operations_total", outcome="failure") == 2
    assert after.total("connector_operations_total", tenant="acme") == 2
    assert after.delta(before, "connector_operations_total", outcome="failure") == 2
    assert after.delta(before, "connector_operations_total", outcome="success") == 0

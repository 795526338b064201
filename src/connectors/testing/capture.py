"""Capture log events and read metrics in tests, without parsing text or scraping HTTP.

::

    with capture_logs() as events:
        await connector.create(...)
    assert events[-1]["event"] == "operation.success"

    before = MetricsSnapshot.take(hub.metrics)
    ...
    assert MetricsSnapshot.take(hub.metrics).delta(before, "connector_operations_total",
                                                   outcome="success") == 1
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass

from connectors.observability.logging import intercept
from connectors.observability.metrics import Metrics

__all__ = ["MetricsSnapshot", "capture_logs", "metric_value"]


@contextmanager
def capture_logs(level: str = "DEBUG") -> Iterator[list[dict[str, object]]]:
    """Collect every event at ``level`` or above as dicts, exactly as they would be emitted.

    The events have been through the whole processor chain, redaction included, so a test can
    assert both what is logged and that no secret is. Nothing is written to the output while
    capturing; the previous logging configuration is restored afterwards.
    """
    events: list[dict[str, object]] = []

    def sink(event_dict: MutableMapping[str, object]) -> None:
        events.append(dict(event_dict))

    with intercept(sink, level=level):
        yield events


def metric_value(metrics: Metrics, name: str, **labels: str) -> float:
    """A sample's value, ``0.0`` when it was never recorded (``tenant`` given in clear)."""
    value = metrics.value(name, **labels)
    return 0.0 if value is None else value


@dataclass(frozen=True, slots=True)
class MetricsSnapshot:
    """Every sample of a :class:`Metrics` at one moment, for before/after comparisons."""

    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]
    metrics: Metrics

    @classmethod
    def take(cls, metrics: Metrics) -> MetricsSnapshot:
        """Read all current samples."""
        return cls(metrics.samples(), metrics)

    def total(self, name: str, **labels: str) -> float:
        """Sum of the samples called ``name`` whose labels include ``labels``.

        Labels not given are summed over, so ``total("connector_operations_total",
        outcome="failure")`` counts failures of every connector, tenant and operation.
        """
        if "tenant" in labels:
            labels["tenant"] = self.metrics.tenant_label(labels["tenant"])
        wanted = set(labels.items())
        return sum(
            value
            for (sample, sample_labels), value in self.samples.items()
            if sample == name and wanted <= sample_labels
        )

    def delta(self, earlier: MetricsSnapshot, name: str, **labels: str) -> float:
        """How much :meth:`total` grew since ``earlier``."""
        return self.total(name, **labels) - earlier.total(name, **labels)

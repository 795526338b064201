"""sObject Collections: up to 200 records per call; larger inputs are chunked.

Each record needs ``attributes.type``: :func:`typed_records` adds it from ``sobject`` when the
caller names one. Chunks are sent in order and their per-record :class:`SaveResult` lists are
concatenated, so result ``i`` belongs to input record ``i``. ``all_or_none`` applies within each
chunk (Salesforce cannot roll back across calls).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Final, TypeVar

from connectors.errors import InvalidRequest

from .results import SaveResult, save_result

__all__ = ["MAX_RECORDS", "chunked", "parse_results", "typed_records"]

MAX_RECORDS: Final = 200
T = TypeVar("T")


def chunked(items: Sequence[T], size: int = MAX_RECORDS) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def typed_records(
    records: Iterable[Mapping[str, object]], sobject: str | None
) -> list[dict[str, object]]:
    """Copies of ``records`` with ``attributes.type`` set (from ``sobject`` if missing)."""
    out: list[dict[str, object]] = []
    for index, record in enumerate(records):
        copy = dict(record)
        attributes = copy.get("attributes")
        kind = attributes.get("type") if isinstance(attributes, Mapping) else None
        if kind is None:
            if sobject is None:
                raise InvalidRequest(
                    f"record {index} has no attributes.type",
                    hint="pass sobject=... or set attributes={'type': ...} on each record",
                )
            copy["attributes"] = {"type": sobject}
        out.append(copy)
    return out


def parse_results(body: object, expected: int) -> list[SaveResult]:
    """Per-record results of one Collections call (``None`` entries become failures)."""
    if not isinstance(body, list) or len(body) != expected:
        raise InvalidRequest(
            f"Salesforce answered {len(body) if isinstance(body, list) else 'no'} results "
            f"for {expected} records",
            provider_code="UNEXPECTED_RESPONSE",
        )
    return [save_result(item) for item in body]

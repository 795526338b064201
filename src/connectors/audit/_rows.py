"""Conversion between chained audit events and ``audit_events`` rows (internal)."""

from __future__ import annotations

import json
from typing import cast

from connectors.audit.chain import (
    FORMAT_VERSION,
    ChainedEvent,
    StoredLink,
    UnreadableRow,
    canonical_payload,
)
from connectors.audit.events import (
    AuditEvent,
    Outcome,
    from_timestamp_us,
    iso_utc,
    timestamp_us,
)
from connectors.storage.audit import AuditEventRow

__all__ = ["chained_from_row", "link_from_row", "readable_from_row", "row_values"]


def row_values(record: ChainedEvent) -> dict[str, object]:
    """The column values of ``record`` for an ``INSERT``."""
    e = record.event
    return {
        "tenant": e.tenant,
        "seq": record.seq,
        "event_id": e.id,
        "ts_us": timestamp_us(e.timestamp),
        "kind": e.kind,
        "actor": e.actor,
        "connector": e.connector,
        "connector_version": e.connector_version,
        "operation": e.operation,
        "target": e.target,
        "outcome": e.outcome,
        "error_code": e.error_code,
        "status": e.status,
        "duration_ms": e.duration_ms,
        "attempts": e.attempts,
        "request_id": e.request_id,
        "credential_name": e.credential_name,
        "credential_version": e.credential_version,
        "details": e.details_json(),
        "prev_hash": record.prev_hash,
        "hash": record.hash,
    }


def chained_from_row(row: AuditEventRow) -> ChainedEvent:
    """Rebuild the stored event exactly as it was hashed."""
    event = AuditEvent(
        id=row.event_id,
        timestamp=from_timestamp_us(row.ts_us),
        tenant=row.tenant,
        actor=row.actor,
        operation=row.operation,
        outcome=cast(Outcome, row.outcome),
        kind=row.kind,
        connector=row.connector,
        connector_version=row.connector_version,
        target=row.target,
        error_code=row.error_code,
        status=row.status,
        duration_ms=row.duration_ms,
        attempts=row.attempts,
        request_id=row.request_id,
        credential_name=row.credential_name,
        credential_version=row.credential_version,
        details=json.loads(row.details),
    )
    return ChainedEvent(event=event, seq=row.seq, prev_hash=row.prev_hash, hash=row.hash)


def readable_from_row(row: AuditEventRow) -> ChainedEvent | UnreadableRow:
    """Like :func:`chained_from_row`, but a row that no longer parses becomes an
    :class:`UnreadableRow` for the verifier to report instead of an exception."""
    try:
        return chained_from_row(row)
    except (TypeError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        reason = type(exc).__name__
        return UnreadableRow(row.tenant, row.seq, row.prev_hash, row.hash, reason)


def link_from_row(row: AuditEventRow) -> StoredLink:
    """The row's hashed bytes, rebuilt from its columns without parsing or validating them.

    Faster than :func:`chained_from_row` and robust to any tampering: whatever was written to
    the columns is hashed as it is, so a changed value cannot hide behind a parse error.
    """
    fields = {
        "actor": row.actor,
        "attempts": row.attempts,
        "connector": row.connector,
        "connector_version": row.connector_version,
        "credential_name": row.credential_name,
        "credential_version": row.credential_version,
        "duration_ms": row.duration_ms,
        "error_code": row.error_code,
        "id": row.event_id,
        "kind": row.kind,
        "operation": row.operation,
        "outcome": row.outcome,
        "request_id": row.request_id,
        "seq": row.seq,
        "status": row.status,
        "target": row.target,
        "tenant": row.tenant,
        "timestamp": iso_utc(from_timestamp_us(row.ts_us)),
        "v": FORMAT_VERSION,
    }
    payload = canonical_payload(fields, row.details)
    return StoredLink(row.tenant, row.seq, row.prev_hash, row.hash, payload)

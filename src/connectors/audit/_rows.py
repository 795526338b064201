"""Conversion between chained audit events and ``audit_events`` rows (internal)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from json.encoder import encode_basestring_ascii
from typing import Final, cast

from connectors.audit.chain import (
    CANONICAL_FIELDS,
    FORMAT_VERSION,
    AuditChain,
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

__all__ = [
    "ROW_COLUMNS",
    "canonical_bytes",
    "chain_rows",
    "chained_from_row",
    "link_from_row",
    "readable_from_row",
    "row_values",
]


# The write path builds the hashed bytes directly, one f-string per event, instead of two
# ``json.dumps`` calls over freshly built dicts (``AuditChain.canonical``): about 7x cheaper.
# The output is byte-for-byte the same; tests/audit/test_rows.py proves it against
# ``AuditChain.canonical`` for generated events and against a stored hash vector. The key order
# below is ``sorted(CANONICAL_FIELDS + ("details",))``, asserted at import.
_KEY_ORDER = (
    "actor",
    "attempts",
    "connector",
    "connector_version",
    "credential_name",
    "credential_version",
    "details",
    "duration_ms",
    "error_code",
    "id",
    "kind",
    "operation",
    "outcome",
    "request_id",
    "seq",
    "status",
    "target",
    "tenant",
    "timestamp",
    "v",
)
if tuple(sorted((*CANONICAL_FIELDS, "details"))) != _KEY_ORDER:  # pragma: no cover
    raise RuntimeError("audit _rows._KEY_ORDER no longer matches chain.CANONICAL_FIELDS")
_str = encode_basestring_ascii  # what json.dumps(ensure_ascii=True) uses for str
_int = int.__repr__  # what json.dumps uses for int (an IntEnum must not print its name)
_float = float.__repr__  # what json.dumps uses for finite floats
_V = str(FORMAT_VERSION)

#: The ``audit_events`` columns in the order :func:`chain_rows` and :func:`row_values` give them
#: (positional rows: an ``executemany`` of tuples skips a per-row dict-to-parameters step).
ROW_COLUMNS = (
    "tenant",
    "seq",
    "event_id",
    "ts_us",
    "kind",
    "actor",
    "connector",
    "connector_version",
    "operation",
    "target",
    "outcome",
    "error_code",
    "status",
    "duration_ms",
    "attempts",
    "request_id",
    "credential_name",
    "credential_version",
    "details",
    "prev_hash",
    "hash",
)
if set(ROW_COLUMNS) != {c.name for c in AuditEventRow.__table__.columns}:  # pragma: no cover
    raise RuntimeError("audit _rows.ROW_COLUMNS no longer matches the audit_events table")

Row = tuple[object, ...]


def _opt_str(value: str | None) -> str:
    return "null" if value is None else _str(value)


def _opt_int(value: int | None) -> str:
    return "null" if value is None else _int(value)


#: ``iso_utc`` of whole seconds ("2024-05-06T07:08:09"), by second: events of one batch share a
#: handful, and formatting the datetime is a third of the cost of the hashed bytes.
_SECONDS: dict[int, str] = {}
_SECONDS_LIMIT: Final = 4096


def _iso_utc_us(us: int) -> str:
    """``iso_utc`` of the instant ``us`` microseconds after the epoch."""
    second, micro = divmod(us, 1_000_000)
    prefix = _SECONDS.get(second)
    if prefix is None:
        if len(_SECONDS) >= _SECONDS_LIMIT:
            _SECONDS.clear()
        prefix = _SECONDS[second] = iso_utc(from_timestamp_us(second * 1_000_000))[:-8]
    return f"{prefix}.{micro:06d}Z"


def _hash_parts(e: AuditEvent, us: int) -> tuple[str, str]:
    """The canonical JSON of ``e`` cut around its ``seq`` value (which the chain assigns);
    ``us`` is its timestamp in microseconds."""
    duration = e.duration_ms
    head = (
        f'{{"actor":{_str(e.actor)},"attempts":{_opt_int(e.attempts)}'
        f',"connector":{_opt_str(e.connector)}'
        f',"connector_version":{_opt_str(e.connector_version)}'
        f',"credential_name":{_opt_str(e.credential_name)}'
        f',"credential_version":{_opt_int(e.credential_version)}'
        f',"details":{e.details_json()}'
        f',"duration_ms":{"null" if duration is None else _float(duration)}'
        f',"error_code":{_opt_str(e.error_code)},"id":{_str(e.id)},"kind":{_str(e.kind)}'
        f',"operation":{_str(e.operation)},"outcome":{_str(e.outcome)}'
        f',"request_id":{_opt_str(e.request_id)},"seq":'
    )
    tail = (
        f',"status":{_opt_int(e.status)},"target":{_opt_str(e.target)}'
        f',"tenant":{_str(e.tenant)},"timestamp":"{_iso_utc_us(us)}","v":{_V}}}'
    )
    return head, tail


def canonical_bytes(event: AuditEvent, seq: int) -> bytes:
    """Exactly :meth:`AuditChain.canonical` ``(event, seq)``, computed faster."""
    head, tail = _hash_parts(event, timestamp_us(event.timestamp))
    return f"{head}{_int(seq)}{tail}".encode()


def chain_rows(
    chain: AuditChain, last_seq: int, last_hash: str, events: Sequence[AuditEvent]
) -> tuple[list[Row], int, str]:
    """Link ``events`` after ``(last_seq, last_hash)`` and return their ``INSERT`` values
    (as :func:`row_values` would, in :data:`ROW_COLUMNS` order) with the new head's ``seq`` and
    ``hash``.

    One pass per event: the hashed bytes and the row share the serialised details and need no
    intermediate :class:`ChainedEvent`.
    """
    digest = chain.digest
    rows: list[Row] = []
    for e in events:
        last_seq += 1
        us = timestamp_us(e.timestamp)
        head, tail = _hash_parts(e, us)
        link = digest(last_hash, f"{head}{last_seq}{tail}".encode())
        rows.append(_row(e, last_seq, us, last_hash, link))
        last_hash = link
    return rows, last_seq, last_hash


def row_values(record: ChainedEvent) -> Row:
    """The column values of ``record`` for an ``INSERT``, in :data:`ROW_COLUMNS` order."""
    e = record.event
    return _row(e, record.seq, timestamp_us(e.timestamp), record.prev_hash, record.hash)


def _row(e: AuditEvent, seq: int, us: int, prev_hash: str, link: str) -> Row:
    """The ``audit_events`` values of ``e`` linked at ``seq``, in :data:`ROW_COLUMNS` order."""
    return (
        e.tenant,
        seq,
        e.id,
        us,
        e.kind,
        e.actor,
        e.connector,
        e.connector_version,
        e.operation,
        e.target,
        e.outcome,
        e.error_code,
        e.status,
        e.duration_ms,
        e.attempts,
        e.request_id,
        e.credential_name,
        e.credential_version,
        e.details_json(),
        prev_hash,
        link,
    )


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

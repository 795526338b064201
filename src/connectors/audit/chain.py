"""The per-tenant hash chain that makes edited, deleted and reordered audit rows detectable.

Each tenant's events are numbered ``seq`` = 1, 2, 3... and linked::

    hash(n) = SHA-256( hash(n-1) || canonical_json(event n, seq n) )      hash(0) = "0" * 64

With a key (``AuditChain(key=Secret(...))``) the link is HMAC-SHA-256 instead, so someone who can
write to the database but does not hold the key cannot recompute a consistent chain after editing
it. Without a key, recomputing the whole tail *and* the head record hides an edit; keep the key
outside the database, or copy heads elsewhere, when that threat matters.

Everything here is pure: the sinks compute links inside their transaction and
:func:`verify_chain` checks an iterable of stored records, wherever they were read from.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from connectors.audit.events import AuditEvent, iso_utc
from connectors.secrets.secret import Secret

__all__ = [
    "GENESIS",
    "AuditChain",
    "ChainHead",
    "ChainProblem",
    "ChainVerifier",
    "ChainedEvent",
    "ProblemKind",
    "StoredLink",
    "UnreadableRow",
    "VerifyResult",
    "verify_chain",
]

#: The ``prev_hash`` of every chain's first event.
GENESIS: Final = "0" * 64
#: Problems reported per verification at most (the count is always exact).
MAX_REPORTED = 100
#: Version of the hashed form, part of every hash.
FORMAT_VERSION = 1

# The canonical JSON is ``json.dumps(fields | {"details": ...}, sort_keys=True)``; it is built
# from two pre-sorted halves around the already serialised ``details`` so that the details are
# serialised once per event (at construction) and stored rows can be hashed without parsing.
_BEFORE_DETAILS: Final = (
    "actor",
    "attempts",
    "connector",
    "connector_version",
    "credential_name",
    "credential_version",
)
_AFTER_DETAILS: Final = (
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
CANONICAL_FIELDS: Final = (*_BEFORE_DETAILS, *_AFTER_DETAILS)


_dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode


def canonical_payload(fields: Mapping[str, object], details_json: str) -> bytes:
    """The hashed bytes: compact, key-sorted JSON of ``fields`` plus ``"details"``.

    ``fields`` holds every name of :data:`CANONICAL_FIELDS`; ``details_json`` is the details'
    canonical JSON text. Equal to ``json.dumps({**fields, "details": ...}, sort_keys=True,
    separators=(",", ":"))``.
    """
    before = _dumps({k: fields[k] for k in _BEFORE_DETAILS})
    after = _dumps({k: fields[k] for k in _AFTER_DETAILS})
    return f'{before[:-1]},"details":{details_json},{after[1:]}'.encode()


def event_fields(event: AuditEvent, seq: int) -> dict[str, object]:
    """The hashed top-level fields of ``event`` at position ``seq``."""
    return {
        "actor": event.actor,
        "attempts": event.attempts,
        "connector": event.connector,
        "connector_version": event.connector_version,
        "credential_name": event.credential_name,
        "credential_version": event.credential_version,
        "duration_ms": event.duration_ms,
        "error_code": event.error_code,
        "id": event.id,
        "kind": event.kind,
        "operation": event.operation,
        "outcome": event.outcome,
        "request_id": event.request_id,
        "seq": seq,
        "status": event.status,
        "target": event.target,
        "tenant": event.tenant,
        "timestamp": iso_utc(event.timestamp),
        "v": FORMAT_VERSION,
    }


ProblemKind = Literal[
    "hash_mismatch",  # the row's content (or its hash) was edited
    "broken_link",  # prev_hash does not name the previous row: a row was removed or moved
    "gap",  # seq jumps: rows were deleted
    "out_of_order",  # seq repeats or goes back
    "wrong_tenant",  # a row from another tenant's chain
    "truncated",  # the head says the chain is longer than the rows: the tail was deleted
    "head_mismatch",  # the head's hash or seq does not match the last row
    "missing_head",  # rows exist but the head record is gone
]


@dataclass(frozen=True, slots=True)
class ChainedEvent:
    """An event as stored: with its place in the chain."""

    event: AuditEvent
    seq: int
    prev_hash: str
    hash: str

    def to_dict(self) -> dict[str, object]:
        """The event's dict plus ``seq``, ``prev_hash`` and ``hash`` (exports, JSONL)."""
        data = self.event.to_dict()
        data["seq"] = self.seq
        data["prev_hash"] = self.prev_hash
        data["hash"] = self.hash
        return data


@dataclass(frozen=True, slots=True)
class StoredLink:
    """A stored row reduced to what verification needs: its hashed bytes and its links."""

    tenant: str
    seq: int
    prev_hash: str
    hash: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class UnreadableRow:
    """A stored row that no longer parses as an event (tampered with outside the framework)."""

    tenant: str
    seq: int
    prev_hash: str
    hash: str
    reason: str


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The newest link of a tenant's chain, kept apart from the rows."""

    tenant: str
    last_seq: int
    last_hash: str


@dataclass(frozen=True, slots=True)
class ChainProblem:
    """One inconsistency, at the ``seq`` where it was seen."""

    kind: ProblemKind
    seq: int
    message: str


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """The outcome of verifying one tenant's chain. Truthy when the chain is intact."""

    tenant: str
    ok: bool
    events: int
    last_seq: int
    problems: tuple[ChainProblem, ...] = ()
    problem_count: int = 0

    def __bool__(self) -> bool:
        return self.ok

    @property
    def first_problem(self) -> ChainProblem | None:
        return self.problems[0] if self.problems else None


class AuditChain:
    """Computes chain links: plain SHA-256, or HMAC-SHA-256 when given a key."""

    __slots__ = ("_key",)

    def __init__(self, key: Secret | None = None) -> None:
        if key is not None and len(key) < 16:
            raise ValueError("the audit chain key must be at least 16 characters long")
        self._key = key.reveal().encode() if key is not None else None

    @property
    def keyed(self) -> bool:
        return self._key is not None

    def __repr__(self) -> str:
        return f"AuditChain(keyed={self.keyed})"

    @staticmethod
    def canonical(event: AuditEvent, seq: int) -> bytes:
        """The bytes hashed for ``event`` at position ``seq``: sorted-key compact JSON."""
        return canonical_payload(event_fields(event, seq), event.details_json())

    def digest(self, prev_hash: str, payload: bytes) -> str:
        """The link hash of ``payload`` after a link whose hash is ``prev_hash``."""
        message = prev_hash.encode() + payload
        if self._key is None:
            return hashlib.sha256(message).hexdigest()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def link(self, prev_hash: str, seq: int, event: AuditEvent) -> str:
        """The hash of ``event`` placed at ``seq`` after a link whose hash is ``prev_hash``."""
        return self.digest(prev_hash, self.canonical(event, seq))

    def extend(
        self, prev_hash: str, last_seq: int, events: Iterable[AuditEvent]
    ) -> list[ChainedEvent]:
        """Chain ``events`` after ``(last_seq, prev_hash)``, in order."""
        out: list[ChainedEvent] = []
        for event in events:
            last_seq += 1
            digest = self.link(prev_hash, last_seq, event)
            out.append(ChainedEvent(event, last_seq, prev_hash, digest))
            prev_hash = digest
        return out


class ChainVerifier:
    """Checks one tenant's stored rows incrementally: :meth:`feed` them in ``seq`` order, then
    :meth:`finish` with the separately kept head.

    Detects an edited row (its hash no longer matches its content), a deleted row (a ``seq``
    gap and a broken ``prev_hash`` link), reordered rows (``seq`` is part of the hashed content),
    a row copied from another tenant, and — with the head — a deleted tail.
    """

    def __init__(self, tenant: str, chain: AuditChain) -> None:
        self.tenant = tenant
        self._chain = chain
        self._problems: list[ChainProblem] = []
        self._count = 0
        self._events = 0
        self._last_seq = 0
        self._last_hash = GENESIS

    def _report(self, kind: ProblemKind, seq: int, message: str) -> None:
        self._count += 1
        if len(self._problems) < MAX_REPORTED:
            self._problems.append(ChainProblem(kind, seq, message))

    def feed(self, records: Iterable[ChainedEvent | StoredLink | UnreadableRow]) -> None:
        report = self._report
        for record in records:
            self._events += 1
            seq = record.seq
            row_tenant = record.event.tenant if isinstance(record, ChainedEvent) else record.tenant
            if row_tenant != self.tenant:
                report("wrong_tenant", seq, f"row {seq} belongs to tenant {row_tenant!r}")
            if seq > self._last_seq + 1:
                report("gap", seq, f"rows {self._last_seq + 1}..{seq - 1} are missing")
            elif seq <= self._last_seq:
                report("out_of_order", seq, f"row {seq} follows row {self._last_seq}")
            if record.prev_hash != self._last_hash:
                report("broken_link", seq, f"row {seq} does not link to the row before it")
            if isinstance(record, UnreadableRow):
                report("hash_mismatch", seq, f"row {seq} is malformed ({record.reason})")
                digest = None
            elif isinstance(record, StoredLink):
                digest = self._chain.digest(record.prev_hash, record.payload)
            else:
                digest = self._chain.link(record.prev_hash, seq, record.event)
            if digest is not None and digest != record.hash:
                report("hash_mismatch", seq, f"row {seq} does not match its hash: it was altered")
            self._last_seq = max(self._last_seq, seq)
            self._last_hash = record.hash

    def finish(self, head: ChainHead | None, *, check_head: bool = True) -> VerifyResult:
        if check_head:
            last_seq, last_hash = self._last_seq, self._last_hash
            if head is None:
                if self._events:
                    self._report("missing_head", last_seq, "the chain head record is missing")
            elif head.last_seq > last_seq:
                self._report(
                    "truncated",
                    last_seq,
                    f"the head records {head.last_seq} events but the chain ends at {last_seq}",
                )
            elif head.last_seq != last_seq or head.last_hash != last_hash:
                self._report(
                    "head_mismatch", last_seq, "the chain head does not match the last row"
                )
        return VerifyResult(
            tenant=self.tenant,
            ok=self._count == 0,
            events=self._events,
            last_seq=self._last_seq,
            problems=tuple(self._problems),
            problem_count=self._count,
        )


def verify_chain(
    tenant: str,
    records: Iterable[ChainedEvent | StoredLink | UnreadableRow],
    *,
    chain: AuditChain,
    head: ChainHead | None,
    check_head: bool = True,
) -> VerifyResult:
    """Check ``records`` (one tenant's rows, in stored ``seq`` order) against the chain.

    ``check_head=False`` skips the tail check, for stores that keep no head (JSONL files).
    """
    verifier = ChainVerifier(tenant, chain)
    verifier.feed(records)
    return verifier.finish(head, check_head=check_head)

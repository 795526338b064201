"""The audit log: every operation, credential change, rotation and denial, per tenant.

- :mod:`~connectors.audit.events` — :class:`AuditEvent`, never holding a secret;
- :mod:`~connectors.audit.chain` — the per-tenant hash chain and its verifier;
- :mod:`~connectors.audit.sinks` — SQL and JSONL sinks;
- :mod:`~connectors.audit.writer` — the batched, spooling :class:`AuditWriter`;
- :mod:`~connectors.audit.query` — listing, export and verification.
"""

from connectors.audit.chain import (
    GENESIS,
    AuditChain,
    ChainedEvent,
    ChainHead,
    ChainProblem,
    ChainVerifier,
    VerifyResult,
    verify_chain,
)
from connectors.audit.events import KINDS, OUTCOMES, AuditEvent, Outcome, Redactor
from connectors.audit.query import AuditPage, AuditQuery, export, list_events, verify, verify_all
from connectors.audit.sinks import AuditSink, JsonlAuditSink, SqlAuditSink, read_jsonl
from connectors.audit.writer import AuditWriter, WriterStats

__all__ = [
    "GENESIS",
    "KINDS",
    "OUTCOMES",
    "AuditChain",
    "AuditEvent",
    "AuditPage",
    "AuditQuery",
    "AuditSink",
    "AuditWriter",
    "ChainHead",
    "ChainProblem",
    "ChainVerifier",
    "ChainedEvent",
    "JsonlAuditSink",
    "Outcome",
    "Redactor",
    "SqlAuditSink",
    "VerifyResult",
    "WriterStats",
    "export",
    "list_events",
    "read_jsonl",
    "verify",
    "verify_all",
    "verify_chain",
]

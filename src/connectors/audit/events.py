"""The audit event: who did what, for which tenant, when, and how it ended.

An :class:`AuditEvent` is immutable and holds identifiers, codes and numbers only, never a secret
value: constructing one with a :class:`~connectors.secrets.Secret` anywhere (a field, or deep in
``details``) raises ``TypeError``, so the mistake surfaces in the test that makes it rather than
in the audit table. ``details`` is a small JSON document; its strings pass through an injected
redaction hook (:meth:`AuditEvent.redacted`) before the event is stored.

Events carry a sortable id (48-bit millisecond time + 80 random bits, as 32 hex characters) and a
UTC timestamp from the injected :class:`~connectors.clock.Clock`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Final, Literal, TypeAlias, cast, get_args

from connectors.clock import Clock
from connectors.ids import random_hex
from connectors.secrets.secret import Secret

__all__ = [
    "KINDS",
    "OUTCOMES",
    "AuditEvent",
    "JsonValue",
    "Outcome",
    "Redactor",
    "from_timestamp_us",
    "iso_utc",
    "new_event_id",
    "timestamp_us",
]

JsonValue: TypeAlias = (
    "str | int | float | bool | tuple[JsonValue, ...] | Mapping[str, JsonValue] | None"
)
Outcome = Literal["success", "failure", "denied"]
Redactor: TypeAlias = Callable[[str], str]

OUTCOMES: Final[frozenset[str]] = frozenset(get_args(Outcome))

#: Kinds the framework writes. Others are accepted when they match ``[a-z][a-z0-9_.]*``.
KINDS: Final[frozenset[str]] = frozenset(
    {
        "operation",
        "credential.put",
        "credential.delete",
        "token.refresh",
        "rotation",
        "access.denied",
        "access.change",
        "circuit.reset",
        "config",
    }
)

_KIND_RE = re.compile(r"[a-z][a-z0-9_.]{0,63}")
_ID_RE = re.compile(r"[0-9a-f]{32}")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EMPTY_DETAILS: Final[Mapping[str, JsonValue]] = MappingProxyType({})
_US = timedelta(microseconds=1)

#: Upper bounds that keep one audit row small.
MAX_SHORT = 200
MAX_TARGET = 512
_MAX_VERSION = 64
MAX_DETAILS_BYTES = 8192
_MAX_DEPTH = 8


def new_event_id(now: float) -> str:
    """A 32-hex-character id that sorts by creation time (millisecond resolution)."""
    millis = int(now * 1000) & 0xFFFF_FFFF_FFFF
    return f"{millis:012x}{random_hex(10)}"


def timestamp_us(ts: datetime) -> int:
    """Exact integer microseconds since the epoch (what the database stores)."""
    return (ts - _EPOCH) // _US


def from_timestamp_us(us: int) -> datetime:
    """The inverse of :func:`timestamp_us`: an aware UTC datetime."""
    return _EPOCH + timedelta(microseconds=us)


def iso_utc(ts: datetime) -> str:
    """``2024-05-06T07:08:09.123456Z``: fixed width, always with microseconds (hashed form)."""
    return ts.isoformat(timespec="microseconds")[:-6] + "Z"


def _canonical_json(value: object) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def _freeze(value: object, path: str, depth: int) -> JsonValue:
    """Validate a details value and return an immutable copy (lists become tuples)."""
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"audit details {path} is {value!r}: only finite numbers are allowed")
        return value
    if isinstance(value, Secret):
        raise TypeError(f"audit details {path} is a Secret: secret values never enter the audit")
    if depth >= _MAX_DEPTH:
        raise ValueError(f"audit details nest deeper than {_MAX_DEPTH} levels at {path}")
    if isinstance(value, Mapping):
        frozen: dict[str, JsonValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"audit details keys must be strings, got {key!r} at {path}")
            frozen[key] = _freeze(item, f"{path}.{key}", depth + 1)
        return MappingProxyType(frozen)
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(item, f"{path}[{i}]", depth + 1) for i, item in enumerate(value))
    raise TypeError(
        f"audit details {path} is a {type(value).__name__}: use str, int, float, bool, None, "
        "lists or dicts"
    )


def _thaw(value: JsonValue) -> object:
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    return value


def _redact_value(value: JsonValue, redact: Redactor) -> JsonValue:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, tuple):
        return tuple(_redact_value(v, redact) for v in value)
    if isinstance(value, Mapping):
        return MappingProxyType({k: _redact_value(v, redact) for k, v in value.items()})
    return value


def _check_text(name: str, value: object, limit: int, *, required: bool) -> None:
    if value is None:
        if required:
            raise ValueError(f"audit event needs a non-empty {name}")
        return
    if isinstance(value, Secret):
        raise TypeError(f"audit event field {name} is a Secret: secret values never enter audit")
    if not isinstance(value, str):
        raise TypeError(f"audit event field {name} must be a str, not {type(value).__name__}")
    if required and not value:
        raise ValueError(f"audit event needs a non-empty {name}")
    if len(value) > limit:
        raise ValueError(f"audit event field {name} is longer than {limit} characters")


def _check_int(name: str, value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"audit event field {name} must be an int or None")


_TEXT_FIELDS: Final = (
    ("tenant", MAX_SHORT, True),
    ("actor", MAX_SHORT, True),
    ("operation", MAX_SHORT, True),
    ("connector", MAX_SHORT, False),
    ("connector_version", _MAX_VERSION, False),
    ("target", MAX_TARGET, False),
    ("error_code", MAX_SHORT, False),
    ("request_id", MAX_SHORT, False),
    ("credential_name", MAX_SHORT, False),
)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One audit record. Build it with :meth:`new`; the constructor is for re-reading rows.

    ``kind`` says what happened (``operation``, ``credential.put``, ``access.denied``...),
    ``operation`` names the action (``create``, ``query``, ``grant``...), ``target`` is a short
    identifier of what it acted on (an sObject, a record id, a channel) — never a payload.
    """

    id: str
    timestamp: datetime
    tenant: str
    actor: str
    operation: str
    outcome: Outcome
    kind: str = "operation"
    connector: str | None = None
    connector_version: str | None = None
    target: str | None = None
    error_code: str | None = None
    status: int | None = None
    duration_ms: float | None = None
    attempts: int | None = None
    request_id: str | None = None
    credential_name: str | None = None
    credential_version: int | None = None
    details: Mapping[str, JsonValue] = field(default_factory=lambda: MappingProxyType({}))
    _details_json: str = field(default="{}", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not _ID_RE.fullmatch(self.id):
            raise ValueError("audit event id must be 32 lowercase hex characters")
        ts = self.timestamp
        if not isinstance(ts, datetime) or ts.tzinfo is None:
            raise TypeError("audit event timestamp must be a timezone-aware datetime")
        if ts.utcoffset() != timedelta(0):
            object.__setattr__(self, "timestamp", ts.astimezone(UTC))
        for name, limit, required in _TEXT_FIELDS:
            value = getattr(self, name)
            # The common cases first, without a call: a str within its limit, an absent optional.
            if type(value) is str:
                if len(value) <= limit and (value or not required):
                    continue
            elif value is None and not required:
                continue
            _check_text(name, value, limit, required=required)
        if self.outcome not in OUTCOMES:
            raise ValueError(
                f"audit outcome {self.outcome!r} is not one of {', '.join(sorted(OUTCOMES))}"
            )
        if not isinstance(self.kind, str) or not _KIND_RE.fullmatch(self.kind):
            raise ValueError(f"audit kind {self.kind!r} must match [a-z][a-z0-9_.]* (<= 64)")
        _check_int("status", self.status)
        _check_int("attempts", self.attempts)
        _check_int("credential_version", self.credential_version)
        if self.duration_ms is not None:
            if isinstance(self.duration_ms, bool) or not isinstance(self.duration_ms, (int, float)):
                raise TypeError("audit event field duration_ms must be a number or None")
            duration = float(self.duration_ms)
            if not math.isfinite(duration):
                raise ValueError("audit event duration_ms must be finite")
            # Always a float: 12 and 12.0 must hash the same after a database round trip.
            object.__setattr__(self, "duration_ms", duration)
        if not self.details and type(self.details) in (dict, MappingProxyType):
            object.__setattr__(self, "details", _EMPTY_DETAILS)
            return  # no details: nothing to freeze or serialise ("{}" is the default)
        if not isinstance(self.details, Mapping):
            raise TypeError("audit details must be a mapping")
        details = _freeze(self.details, "details", 0)
        object.__setattr__(self, "details", details)
        # Serialised once, here: the size check, the database row and the hash all use it.
        text = _canonical_json(_thaw(details)) if details else "{}"
        object.__setattr__(self, "_details_json", text)
        size = len(text)
        if size > MAX_DETAILS_BYTES:
            raise ValueError(f"audit details are {size} bytes; keep them under {MAX_DETAILS_BYTES}")

    @classmethod
    def new(
        cls,
        *,
        clock: Clock | None = None,
        at: float | None = None,
        tenant: str,
        actor: str,
        operation: str,
        outcome: Outcome,
        kind: str = "operation",
        connector: str | None = None,
        connector_version: str | None = None,
        target: str | None = None,
        error_code: str | None = None,
        status: int | None = None,
        duration_ms: float | None = None,
        attempts: int | None = None,
        request_id: str | None = None,
        credential_name: str | None = None,
        credential_version: int | None = None,
        details: Mapping[str, object] | None = None,
    ) -> AuditEvent:
        """A new event stamped with a fresh id and, as its UTC timestamp, ``at`` (seconds since
        the epoch: when it happened, for an event built later) or else ``clock.time()``.

        An over-long ``target`` is shortened (an audit record must not fail an operation).
        """
        if at is not None:
            now = at
        elif clock is not None:
            now = clock.time()
        else:
            raise TypeError("AuditEvent.new needs a clock or the time the event happened (at=)")
        if isinstance(target, str) and len(target) > MAX_TARGET:
            target = target[: MAX_TARGET - 1] + "…"
        if (
            not details
            and kind in KINDS
            and outcome in OUTCOMES
            # __post_init__'s checks of these values, inline (the common event passes them all)
            and type(tenant) is str
            and 0 < len(tenant) <= MAX_SHORT
            and type(actor) is str
            and 0 < len(actor) <= MAX_SHORT
            and type(operation) is str
            and 0 < len(operation) <= MAX_SHORT
            and (connector is None or (type(connector) is str and len(connector) <= MAX_SHORT))
            and (
                connector_version is None
                or (type(connector_version) is str and len(connector_version) <= _MAX_VERSION)
            )
            and (target is None or (type(target) is str and len(target) <= MAX_TARGET))
            and (error_code is None or (type(error_code) is str and len(error_code) <= MAX_SHORT))
            and (request_id is None or (type(request_id) is str and len(request_id) <= MAX_SHORT))
            and (
                credential_name is None
                or (type(credential_name) is str and len(credential_name) <= MAX_SHORT)
            )
            and (status is None or type(status) is int)
            and (attempts is None or type(attempts) is int)
            and (credential_version is None or type(credential_version) is int)
            and (duration_ms is None or (type(duration_ms) is float and _isfinite(duration_ms)))
        ):
            # Filled slot by slot: a frozen dataclass's __init__ sets each field through
            # object.__setattr__ and then runs __post_init__, about twice the cost.
            event = _new_event(cls)
            _set_id(event, new_event_id(now))
            _set_timestamp(event, datetime.fromtimestamp(now, UTC))
            _set_tenant(event, tenant)
            _set_actor(event, actor)
            _set_operation(event, operation)
            _set_outcome(event, outcome)
            _set_kind(event, kind)
            _set_connector(event, connector)
            _set_connector_version(event, connector_version)
            _set_target(event, target)
            _set_error_code(event, error_code)
            _set_status(event, status)
            _set_duration_ms(event, duration_ms)
            _set_attempts(event, attempts)
            _set_request_id(event, request_id)
            _set_credential_name(event, credential_name)
            _set_credential_version(event, credential_version)
            _set_details(event, _EMPTY_DETAILS)
            _set_details_json(event, "{}")
            return event
        return cls(
            id=new_event_id(now),
            timestamp=datetime.fromtimestamp(now, UTC),
            tenant=tenant,
            actor=actor,
            operation=operation,
            outcome=outcome,
            kind=kind,
            connector=connector,
            connector_version=connector_version,
            target=target,
            error_code=error_code,
            status=status,
            duration_ms=duration_ms,
            attempts=attempts,
            request_id=request_id,
            credential_name=credential_name,
            credential_version=credential_version,
            details=cast("Mapping[str, JsonValue]", details or {}),
        )

    def redacted(self, redact: Redactor) -> AuditEvent:
        """A copy whose ``details`` strings went through ``redact``."""
        if not self.details:
            return self
        return dataclasses.replace(
            self, details=cast("Mapping[str, JsonValue]", _redact_value(self.details, redact))
        )

    def details_json(self) -> str:
        """``details`` as canonical JSON (sorted keys, no spaces): what is stored and hashed."""
        return self._details_json

    def to_dict(self) -> dict[str, object]:
        """A JSON-ready dict (timestamp as ISO 8601 UTC with microseconds)."""
        return {
            "id": self.id,
            "timestamp": iso_utc(self.timestamp),
            "tenant": self.tenant,
            "actor": self.actor,
            "operation": self.operation,
            "outcome": self.outcome,
            "kind": self.kind,
            "connector": self.connector,
            "connector_version": self.connector_version,
            "target": self.target,
            "error_code": self.error_code,
            "status": self.status,
            "duration_ms": self.duration_ms,
            "attempts": self.attempts,
            "request_id": self.request_id,
            "credential_name": self.credential_name,
            "credential_version": self.credential_version,
            "details": _thaw(self.details),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> AuditEvent:
        """Rebuild an event from :meth:`to_dict` output (spool files, JSONL sinks)."""
        raw_ts = data["timestamp"]
        if not isinstance(raw_ts, str):
            raise TypeError("audit event timestamp must be an ISO 8601 string")
        ts = datetime.fromisoformat(raw_ts.replace("Z", "+00:00"))
        fields = {f.name for f in dataclasses.fields(cls) if f.init}
        kwargs = {k: v for k, v in data.items() if k in fields and k != "timestamp"}
        details = kwargs.get("details")
        if details is None:
            kwargs["details"] = {}
        return cls(timestamp=ts, **kwargs)  # type: ignore[arg-type]


# --- the fast path of AuditEvent.new ------------------------------------------------------------
# tests/audit/test_events.py holds the fast path to the constructor's verdicts and values.

if not all(_KIND_RE.fullmatch(kind) for kind in KINDS):  # pragma: no cover
    raise RuntimeError("a KINDS entry does not match the kind pattern")

_new_event = object.__new__
_isfinite = math.isfinite
# Each field's slot setter, taken by name; a field the fast path does not fill stops the import.
_SETTERS = {f.name: AuditEvent.__dict__[f.name].__set__ for f in dataclasses.fields(AuditEvent)}
_set_id = _SETTERS.pop("id")
_set_timestamp = _SETTERS.pop("timestamp")
_set_tenant = _SETTERS.pop("tenant")
_set_actor = _SETTERS.pop("actor")
_set_operation = _SETTERS.pop("operation")
_set_outcome = _SETTERS.pop("outcome")
_set_kind = _SETTERS.pop("kind")
_set_connector = _SETTERS.pop("connector")
_set_connector_version = _SETTERS.pop("connector_version")
_set_target = _SETTERS.pop("target")
_set_error_code = _SETTERS.pop("error_code")
_set_status = _SETTERS.pop("status")
_set_duration_ms = _SETTERS.pop("duration_ms")
_set_attempts = _SETTERS.pop("attempts")
_set_request_id = _SETTERS.pop("request_id")
_set_credential_name = _SETTERS.pop("credential_name")
_set_credential_version = _SETTERS.pop("credential_version")
_set_details = _SETTERS.pop("details")
_set_details_json = _SETTERS.pop("_details_json")
if _SETTERS:  # pragma: no cover
    raise RuntimeError(f"AuditEvent.new's fast path does not fill {sorted(_SETTERS)}")

"""What Salesforce operations return: save results and record dictionaries, parsed at the edge.

A :class:`SaveResult` is the outcome of writing one record (``create``, ``upsert`` and every
element of an sObject Collections call): ``id``, ``success``, ``created`` (upserts) and the
per-record :class:`~connectors.errors.FieldError` details of a failure. ``raise_for_error``
turns a failed one into the same typed error a single-record call would raise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeAlias

from connectors.errors import ConnectorError, FieldError

from .classify import ApiErrorItem, error_for

__all__ = ["Record", "SaveResult", "save_result"]

Record: TypeAlias = dict[str, object]
"""One record as Salesforce returns it (``attributes`` included)."""


@dataclass(frozen=True, slots=True)
class SaveResult:
    """The outcome of writing one record."""

    id: str | None
    success: bool
    created: bool | None = None
    errors: tuple[FieldError, ...] = ()
    codes: tuple[str, ...] = ()

    def raise_for_error(self) -> None:
        """Raise the typed error of a failed write (no-op on success)."""
        if not self.success:
            raise self.error()

    def error(self) -> ConnectorError:
        """The typed error this failed result stands for."""
        items = [ApiErrorItem(e.code or "UNKNOWN", e.message, (e.field,)) for e in self.errors]
        if not items:
            items = [ApiErrorItem(code, "") for code in self.codes] or [
                ApiErrorItem("UNKNOWN_EXCEPTION", "the record was not saved")
            ]
        return error_for(items, None, lead="Salesforce did not save the record")


def save_result(body: object, *, created: bool | None = None) -> SaveResult:
    """Parse ``{"id", "success", "errors", "created"?}`` (a REST or Collections result)."""
    if not isinstance(body, Mapping):
        return SaveResult(None, False, created, (), ("UNEXPECTED_RESPONSE",))
    raw_errors = body.get("errors") or []
    errors: list[FieldError] = []
    codes: list[str] = []
    if isinstance(raw_errors, list):
        for item in raw_errors:
            if not isinstance(item, Mapping):
                continue
            code = str(item.get("statusCode") or item.get("errorCode") or "UNKNOWN")
            message = str(item.get("message") or "")
            codes.append(code)
            fields = item.get("fields") or []
            names = [str(f) for f in fields] if isinstance(fields, list) else []
            errors.extend(FieldError(name, message, code) for name in names or [""])
    raw_created = body.get("created", created)
    record_id = body.get("id")
    return SaveResult(
        id=str(record_id) if record_id else None,
        success=bool(body.get("success", not codes)),
        created=raw_created if isinstance(raw_created, bool) else None,
        errors=tuple(errors),
        codes=tuple(codes),
    )

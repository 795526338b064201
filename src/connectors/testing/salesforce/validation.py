"""Checks every write path applies before a record reaches the store.

Unknown fields, read-only fields, values of the wrong type, missing required fields, references
to records of the wrong type or to no record, and custom validation rules each fail with the
status code Salesforce reports for them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from .ids import parse_id
from .schema import FieldDef, FieldValue, Record, Schema, SObjectDef
from .values import InvalidValue, from_json_value

__all__ = ["RecordError", "ValidationRule", "validate_write"]


class RecordError(Exception):
    """A record-level failure: Salesforce status code, message and fields."""

    def __init__(self, code: str, message: str, fields: Sequence[str] = ()) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.fields = list(fields)

    def collection_item(self) -> dict[str, object]:
        """The ``errors[]`` element of composite/collection results."""
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}


@dataclass(frozen=True)
class ValidationRule:
    """A custom validation rule: when ``condition(record)`` is true the write fails."""

    sobject: str
    condition: Callable[[Record], bool]
    message: str
    field: str | None = None


def validate_write(
    sobject: SObjectDef,
    body: Mapping[str, object],
    *,
    existing: Record | None,
    schema: Schema,
    lookup: Callable[[str], Record | None],
    rules: Sequence[ValidationRule] = (),
) -> dict[str, FieldValue]:
    """The converted values of a create (``existing`` None) or update; raises RecordError."""
    creating = existing is None
    values: dict[str, FieldValue] = {}
    for name, raw in body.items():
        if name == "attributes":
            continue
        fdef = sobject.field(name)
        if fdef is None:
            raise RecordError(
                "INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject.name}"
            )
        if (creating and not fdef.createable) or (not creating and not fdef.updateable):
            if fdef.name == "Id" and not creating:
                continue
            raise RecordError(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {fdef.name}. Please check the security "
                "settings of this field and verify that it is read/write for your profile or "
                "permission set.",
                [fdef.name],
            )
        try:
            value = from_json_value(fdef, raw)
        except InvalidValue as exc:
            raise RecordError(exc.error_code, exc.message, [exc.field]) from None
        if fdef.type == "reference" and isinstance(value, str):
            _check_reference(fdef, value, schema, lookup)
        values[fdef.name] = value
    merged: Record = dict(existing or {})
    if creating:
        merged.update({f.name: f.default for f in sobject.fields if f.default is not None})
    merged.update(values)
    missing = [
        f.name
        for f in sobject.fields
        if f.required and f.createable and merged.get(f.name) in (None, "")
    ]
    if missing:
        raise RecordError(
            "REQUIRED_FIELD_MISSING",
            f"Required fields are missing: [{', '.join(missing)}]",
            missing,
        )
    for rule in rules:
        if rule.sobject.lower() == sobject.name.lower() and rule.condition(merged):
            raise RecordError(
                "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                rule.message,
                [rule.field] if rule.field else [],
            )
    return values


def _check_reference(
    fdef: FieldDef, value: str, schema: Schema, lookup: Callable[[str], Record | None]
) -> None:
    parts = parse_id(value)
    allowed = {t.key_prefix for t in (schema.get(n) for n in fdef.reference_to) if t is not None}
    if parts is not None and parts.key_prefix not in allowed:
        raise RecordError(
            "FIELD_INTEGRITY_EXCEPTION",
            f"{fdef.label}: id value of incorrect type: {value}",
            [fdef.name],
        )
    if parts is None or lookup(value) is None:
        raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [fdef.name])

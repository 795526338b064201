"""Conversions between emulator field values and their JSON and CSV forms.

Salesforce writes dates as ``2010-01-01`` and datetimes as ``2011-07-07T00:37:00.000+0000``; it
accepts several ISO forms on input. Incoming values are checked against the field type here, so
every write path (REST, collections, composite, Bulk CSV) rejects the same bad values the same way.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from .ids import normalize_id
from .schema import FieldDef, FieldValue

__all__ = [
    "InvalidValue",
    "format_datetime",
    "from_csv_value",
    "from_json_value",
    "to_csv_value",
    "to_json_value",
]

JsonScalar = str | int | float | bool | None


class InvalidValue(ValueError):
    """A value that does not fit its field; ``error_code`` is Salesforce's status code."""

    def __init__(self, error_code: str, message: str, field: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message
        self.field = field


def format_datetime(value: datetime) -> str:
    """``2011-07-07T00:37:00.000+0000``: Salesforce's datetime form, in UTC."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def to_json_value(value: FieldValue) -> JsonScalar:
    """A field value as Salesforce puts it in JSON."""
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def to_csv_value(value: FieldValue) -> str:
    """A field value as Bulk API 2.0 writes it in CSV (empty for null)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    json_value = to_json_value(value)
    return str(json_value)


def _parse_datetime(text: str) -> datetime:
    cleaned = text.strip()
    if cleaned.endswith("Z"):
        cleaned = cleaned[:-1] + "+00:00"
    if len(cleaned) >= 5 and cleaned[-5] in "+-" and cleaned[-3] != ":":
        cleaned = cleaned[:-2] + ":" + cleaned[-2:]
    parsed = datetime.fromisoformat(cleaned)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def from_json_value(fdef: FieldDef, value: object) -> FieldValue:
    """Check and convert an incoming JSON value for ``fdef``; raises :class:`InvalidValue`."""
    if value is None:
        return None
    ftype = fdef.type
    bad = InvalidValue(
        "JSON_PARSER_ERROR"
        if ftype in ("boolean", "double", "currency", "percent", "int")
        else "INVALID_TYPE_ON_FIELD_IN_RECORD",
        f"{fdef.label}: value not of required type: {value}",
        fdef.name,
    )
    if ftype == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise bad
    if ftype in ("double", "currency", "percent", "int"):
        if isinstance(value, bool):
            raise bad
        if isinstance(value, int | float):
            number: float | int = value
        elif isinstance(value, str):
            try:
                number = float(value)
            except ValueError:
                raise bad from None
        else:
            raise bad
        if ftype == "int":
            if float(number) != int(number):
                raise bad
            return int(number)
        return float(number)
    if not isinstance(value, str):
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and ftype
            not in (
                "date",
                "datetime",
                "id",
                "reference",
            )
        ):
            value = str(value)
        else:
            raise bad
    if ftype == "date":
        try:
            return date.fromisoformat(value[:10]) if len(value) >= 10 else date.fromisoformat(value)
        except ValueError:
            raise bad from None
    if ftype == "datetime":
        try:
            return _parse_datetime(value)
        except ValueError:
            raise bad from None
    if ftype in ("id", "reference"):
        if value == "":
            return None
        normalized = normalize_id(value)
        if normalized is None:
            raise InvalidValue(
                "MALFORMED_ID", f"{fdef.label}: id value of incorrect type: {value}", fdef.name
            )
        return normalized
    if fdef.length and len(value) > fdef.length:
        raise InvalidValue(
            "STRING_TOO_LONG",
            f"{fdef.label}: data value too large: {value[:40]} (max length={fdef.length})",
            fdef.name,
        )
    if ftype == "email" and value and ("@" not in value or value.startswith("@")):
        raise InvalidValue(
            "INVALID_EMAIL_ADDRESS", f"{fdef.label}: invalid email address: {value}", fdef.name
        )
    return value


def from_csv_value(fdef: FieldDef, text: str) -> FieldValue:
    """A Bulk CSV cell for ``fdef``: empty keeps the field unset, ``#N/A`` sets it null."""
    if text in ("", "#N/A"):
        return None
    return from_json_value(fdef, text)

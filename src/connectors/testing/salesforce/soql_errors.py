"""Errors the SOQL front end raises; each maps to one Salesforce ``errorCode``.

The parser and the checker raise nothing else on any input, so the HTTP layer can turn every
problem with a query into Salesforce's ``[{"message", "errorCode"}]`` body.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "InvalidField",
    "InvalidType",
    "MalformedQuery",
    "NumberOutsideValidRange",
    "SoqlError",
    "located_message",
]


def located_message(query: str, position: int, detail: str) -> str:
    """Salesforce's error text: the query line, a caret under the column, row and column."""
    before = query[:position]
    row = before.count("\n") + 1
    line_start = before.rfind("\n") + 1
    line_end = query.find("\n", position)
    line = query[line_start : line_end if line_end >= 0 else len(query)]
    column = position - line_start + 1
    return f"\n{line}\n{' ' * (column - 1)}^\nERROR at Row:{row}:Column:{column}\n{detail}"


class SoqlError(Exception):
    """A query Salesforce would reject; ``error_code`` is the REST ``errorCode``."""

    error_code: ClassVar[str] = "MALFORMED_QUERY"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class MalformedQuery(SoqlError):
    """The text is not valid SOQL (syntax, literal types, unsupported clauses)."""

    error_code = "MALFORMED_QUERY"


class InvalidField(SoqlError):
    """A field or relationship that the object does not have."""

    error_code = "INVALID_FIELD"


class InvalidType(SoqlError):
    """An sObject type the org does not have."""

    error_code = "INVALID_TYPE"


class NumberOutsideValidRange(SoqlError):
    """``OFFSET`` above 2,000 or a similar numeric bound."""

    error_code = "NUMBER_OUTSIDE_VALID_RANGE"

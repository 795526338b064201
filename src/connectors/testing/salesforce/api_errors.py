"""Salesforce's REST error bodies: a JSON array of ``{"message", "errorCode"[, "fields"]}``.

Handlers raise :class:`ApiError`; the HTTP layer turns it into the status and the array body.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["ApiError", "error_item", "not_found"]

ErrorItem = dict[str, object]


def error_item(code: str, message: str, fields: Sequence[str] | None = None) -> ErrorItem:
    """One element of an error array (``fields`` only when given, as Salesforce does)."""
    item: ErrorItem = {"message": message, "errorCode": code}
    if fields is not None:
        item["fields"] = list(fields)
    return item


class ApiError(Exception):
    """An error response: HTTP ``status`` and the array of error items."""

    def __init__(
        self, status: int, code: str, message: str, fields: Sequence[str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields

    @property
    def body(self) -> list[ErrorItem]:
        """The JSON body Salesforce sends for this error."""
        return [error_item(self.code, self.message, self.fields)]


def not_found() -> ApiError:
    """404 ``NOT_FOUND`` "The requested resource does not exist"."""
    return ApiError(404, "NOT_FOUND", "The requested resource does not exist")

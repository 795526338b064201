"""The emulator's internal request/response types and a small method-and-path router.

The HTTP layer (``app.py``) authenticates, meters and delays a request, then hands an
:class:`ApiRequest` to the :class:`Router`; composite subrequests go through the same router, so
a subrequest behaves exactly like the same call made on its own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .api_errors import ApiError, not_found

__all__ = ["ApiRequest", "ApiResponse", "Handler", "Router"]


@dataclass
class ApiRequest:
    """A REST call below ``/services/data/vXX.X`` (``path`` starts after the version)."""

    method: str
    path: str
    version: str
    params: Mapping[str, str]
    headers: Mapping[str, str]
    body: object
    user_id: str


@dataclass
class ApiResponse:
    """A REST answer: JSON ``body`` (``None`` for no body), CSV ``text`` or a CSV ``file``."""

    status: int
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)
    text: str | None = None
    file: Path | None = None


Handler = Callable[[ApiRequest, tuple[str, ...]], ApiResponse]


class Router:
    """Dispatches on method and a path regex; 404 for unknown paths, 405 for wrong methods."""

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        """Route ``method`` requests whose path fully matches ``pattern``."""
        self._routes.append((method, re.compile(pattern), handler))

    def dispatch(self, request: ApiRequest) -> ApiResponse:
        """Run the matching handler; :class:`ApiError` propagates to the caller."""
        allowed: list[str] = []
        path = request.path.rstrip("/") or "/"
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            if method == request.method:
                return handler(request, match.groups())
            allowed.append(method)
        if allowed:
            raise ApiError(
                405,
                "METHOD_NOT_ALLOWED",
                f"HTTP Method '{request.method}' not allowed. Allowed are "
                + ",".join(sorted(set(allowed))),
            )
        raise not_found()


def first_values(items: Mapping[str, str] | None) -> dict[str, str]:
    """A plain dict copy of a query-parameter mapping."""
    return dict(items or {})

"""The Composite resource: up to 25 subrequests in one API call, with references between them.

::

    result = await sf.composite([
        Subrequest("POST", "sobjects/Account", "acct", body={"Name": "Acme"}),
        Subrequest("POST", "sobjects/Contact", "ct",
                   body={"LastName": "Smith", "AccountId": "@{acct.id}"}),
    ], all_or_none=True)
    result["acct"].body["id"]

A subrequest URL may be relative to the API version (``sobjects/Account``) or absolute
(``/services/data/v62.0/...``). The top level always answers 200; each :class:`SubResponse`
carries its own status, and :meth:`SubResponse.raise_for_error` raises the typed error a single
call would have raised.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from connectors.errors import ConnectorError, InvalidRequest

from .classify import _items_from, error_for

__all__ = ["MAX_SUBREQUESTS", "CompositeResult", "SubResponse", "Subrequest", "build_body"]

MAX_SUBREQUESTS: Final = 25


@dataclass(frozen=True, slots=True)
class Subrequest:
    """One subrequest: method, URL, reference id, optional JSON body and headers."""

    method: str
    url: str
    reference_id: str
    body: object = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SubResponse:
    """One subrequest's answer."""

    reference_id: str
    status: int
    body: object
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def error(self) -> ConnectorError | None:
        """The typed error of a failed subrequest (``None`` when it succeeded)."""
        if self.ok:
            return None
        return error_for(
            _items_from(self.body),
            self.status,
            lead=f"composite subrequest {self.reference_id!r} failed",
        )

    def raise_for_error(self) -> None:
        error = self.error()
        if error is not None:
            raise error


@dataclass(frozen=True, slots=True)
class CompositeResult:
    """Every subresponse, in request order; index by reference id."""

    responses: tuple[SubResponse, ...]

    def __getitem__(self, reference_id: str) -> SubResponse:
        for response in self.responses:
            if response.reference_id == reference_id:
                return response
        raise KeyError(reference_id)

    def __iter__(self) -> Iterator[SubResponse]:
        return iter(self.responses)

    def __len__(self) -> int:
        return len(self.responses)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.responses)

    @classmethod
    def parse(cls, body: object) -> CompositeResult:
        raw = body.get("compositeResponse") if isinstance(body, Mapping) else None
        out: list[SubResponse] = []
        for item in raw if isinstance(raw, list) else []:
            if not isinstance(item, Mapping):
                continue
            headers = item.get("httpHeaders")
            status = item.get("httpStatusCode")
            out.append(
                SubResponse(
                    reference_id=str(item.get("referenceId", "")),
                    status=int(status) if isinstance(status, int) else 0,
                    body=item.get("body"),
                    headers=dict(headers) if isinstance(headers, Mapping) else {},
                )
            )
        return cls(tuple(out))


def build_body(
    subrequests: Sequence[Subrequest], base: str, *, all_or_none: bool
) -> dict[str, object]:
    """The ``POST /composite`` body; relative URLs are put under ``base``."""
    if not subrequests:
        raise InvalidRequest("composite needs at least one subrequest")
    if len(subrequests) > MAX_SUBREQUESTS:
        raise InvalidRequest(
            f"composite takes at most {MAX_SUBREQUESTS} subrequests, got {len(subrequests)}",
            hint="split the work (references only resolve within one composite request)",
        )
    seen: set[str] = set()
    items: list[dict[str, object]] = []
    for sub in subrequests:
        if not sub.reference_id or sub.reference_id in seen:
            raise InvalidRequest(
                f"composite reference id {sub.reference_id!r} is empty or repeated",
                hint="give every subrequest a unique referenceId",
            )
        seen.add(sub.reference_id)
        url = sub.url if sub.url.startswith("/") else f"{base}/{sub.url}"
        item: dict[str, object] = {
            "method": sub.method.upper(),
            "url": url,
            "referenceId": sub.reference_id,
        }
        if sub.body is not None:
            item["body"] = sub.body
        if sub.headers:
            item["httpHeaders"] = dict(sub.headers)
        items.append(item)
    return {"allOrNone": all_or_none, "compositeRequest": items}
